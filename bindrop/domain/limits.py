"""Resource limits of an app, and the parsers that read them from people.

Sizes use powers of 1024 (``K``, ``M``, ``G``, ``T``; ``bindrop.domain.sizes``), as
systemd's ``MemoryMax=`` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from bindrop.domain.sizes import SIZE_FACTORS
from bindrop.errors import InvalidInput

# UINT64_MAX means "no limit" to systemd, so the largest real limit is one below it.
_U64_LIMIT_MAX = 2**64 - 2
USEC_PER_CPU_PERCENT = 10_000

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)
_CPU = re.compile(r"(\d+(?:\.\d+)?)\s*(%?)")


@dataclass(frozen=True)
class Limits:
    """Optional limits of one app; ``None`` means systemd's default (no limit).

    ``memory_max`` in bytes, ``cpu_quota`` in percent of one CPU (``50``, ``200``),
    ``tasks_max`` in processes + threads. Each must be a positive int (``InvalidInput``).
    """

    memory_max: int | None = None
    cpu_quota: int | None = None
    tasks_max: int | None = None

    def __post_init__(self) -> None:
        _check_positive("memory limit", self.memory_max, _U64_LIMIT_MAX)
        _check_positive("CPU quota", self.cpu_quota, _U64_LIMIT_MAX // USEC_PER_CPU_PERCENT)
        _check_positive("task limit", self.tasks_max, _U64_LIMIT_MAX)


def _check_positive(what: str, value: int | None, high: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= high:
        raise InvalidInput(f"{what} {value!r} is not valid: use a positive whole number")


def parse_memory(text: str) -> int:
    """Parse a memory size (``"256M"``, ``"1G"``, ``"512K"``, ``"1.5G"``, ``"1048576"``) to bytes.

    Case-insensitive; a trailing ``B`` or ``iB`` is allowed. Fractions round down to whole
    bytes. ``InvalidInput`` for anything else, zero, or more than systemd can hold.
    """
    return parse_size(text, "memory size")


def parse_size(text: str, what: str = "size", high: int = _U64_LIMIT_MAX) -> int:
    """Parse a size as ``parse_memory`` does; ``what`` names it in the error, ``high`` is
    the most it may be."""
    match = _SIZE.fullmatch(text.strip()) if isinstance(text, str) else None
    size = 0
    if match:
        size = int(Fraction(match[1]) * SIZE_FACTORS[match[2].upper()])
    if not 0 < size <= high:
        raise InvalidInput(
            f"{what} {text!r} is not valid: use a positive size such as 512M, 1G "
            "or 1048576 (bytes)"
        )
    return size


def parse_cpu(text: str) -> int:
    """Parse a CPU quota to whole percent of one CPU: ``"50%"`` -> 50, ``"1.5"`` (CPUs) -> 150.

    ``InvalidInput`` for anything else, zero, or a quota that is not a whole percent
    (``"0.015"``): systemd's ``CPUQuota=`` setting holds whole percents.
    """
    match = _CPU.fullmatch(text.strip()) if isinstance(text, str) else None
    percent = Fraction(0)
    if match:
        percent = Fraction(match[1]) * (1 if match[2] else 100)
    if percent.denominator != 1 or not 0 < percent <= _U64_LIMIT_MAX // USEC_PER_CPU_PERCENT:
        raise InvalidInput(
            f"CPU quota {text!r} is not valid: use a whole percent of one CPU such as 50% "
            "or 150%, or a number of CPUs such as 0.5 or 2"
        )
    return int(percent)
