"""Sizes in bytes: the one table of size suffixes and the one way to write a size for people.

Powers of 1024 throughout, as systemd's ``MemoryMax=`` counts: ``K``, ``M``, ``G``, ``T``.
Parsers that read sizes (``bindrop.domain.limits.parse_memory``, the settings' sizes) use
``SIZE_FACTORS``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

SIZE_FACTORS = MappingProxyType({"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4})

#: How ``format_bytes`` writes a size; each reader keeps the form it always had.
ByteStyle = Literal["exact", "rounded", "iec"]


def format_bytes(size: object, style: ByteStyle = "rounded") -> str:
    """Write a byte count for people; ``"-"`` for none (``None``, a bool, a negative number or
    anything but a number).

    - ``"exact"`` (limits, and sizes in messages): ``"256M"``, ``"1.5G"``, ``"512B"``, up to
      ``T``. Exact multiples print without a decimal and ``parse_memory`` reads them back
      unchanged; others keep one decimal, rounded down.
    - ``"rounded"`` (the CLI's tables): ``"256.0M"``, ``"1.5G"``, ``"512B"``, up to ``G``:
      always one decimal, rounded.
    - ``"iec"`` (the dashboard): ``"256.0 MiB"``, ``"512 B"``, up to ``TiB``: always one
      decimal, rounded, with IEC unit names.
    """
    if isinstance(size, bool) or not isinstance(size, int | float) or size < 0:
        return "-"
    if style == "exact":
        whole_bytes = int(size)
        for suffix in ("T", "G", "M", "K"):
            factor = SIZE_FACTORS[suffix]
            if whole_bytes >= factor:
                whole, rest = divmod(whole_bytes, factor)
                if rest == 0:
                    return f"{whole}{suffix}"
                return f"{whole}.{rest * 10 // factor}{suffix}"
        return f"{whole_bytes}B"
    largest = ("G", "M", "K") if style == "rounded" else ("T", "G", "M", "K")
    for suffix in largest:
        factor = SIZE_FACTORS[suffix]
        if size >= factor:
            if style == "rounded":
                return f"{size / factor:.1f}{suffix}"
            return f"{size / factor:.1f} {suffix}iB"
    return f"{size}B" if style == "rounded" else f"{size:.0f} B"
