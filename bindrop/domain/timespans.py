"""Microsecond time spans, written as systemd writes them (``10s``, ``1min 30s``, ``100ms``)."""

from __future__ import annotations

USEC_PER_MSEC = 1_000
USEC_PER_SEC = 1_000_000
USEC_INFINITY = 2**64 - 1

_MINUTE = 60 * USEC_PER_SEC
_DAY = 24 * 60 * _MINUTE
# systemd's month and year are averages: 30.44 and 365.25 days.
_UNITS: tuple[tuple[str, int], ...] = (
    ("y", 31_557_600 * USEC_PER_SEC),
    ("month", 2_629_800 * USEC_PER_SEC),
    ("w", 7 * _DAY),
    ("d", _DAY),
    ("h", 60 * _MINUTE),
    ("min", _MINUTE),
    ("s", USEC_PER_SEC),
    ("ms", USEC_PER_MSEC),
    ("us", 1),
)


#: The longest an app's timeout may be: a timeout longer than a day is a typo, not a wish.
TIMEOUT_MAX_S = 86400.0

def format_usec(usec: int, accuracy: int = USEC_PER_MSEC) -> str:
    """Format ``usec`` as systemd's ``format_timespan()`` does (and ``parse_sec()`` reads back).

    Parts below ``accuracy`` are dropped once a larger part was written; spans under a minute
    with a remainder use a decimal point (``1.500s``). ``0`` is ``"0"``, ``2**64-1`` is
    ``"infinity"``. Raises ``ValueError`` for a negative span or a non-positive accuracy.
    """
    if usec < 0:
        raise ValueError(f"a time span cannot be negative: {usec}")
    if accuracy <= 0:
        raise ValueError(f"accuracy must be positive: {accuracy}")
    if usec == USEC_INFINITY:
        return "infinity"
    if usec == 0:
        return "0"
    parts: list[str] = []
    t = usec
    for suffix, size in _UNITS:
        if t <= 0 or (t < accuracy and parts):
            break
        if t < size:
            continue
        whole, rest = divmod(t, size)
        if t < _MINUTE and rest > 0:
            digits = len(str(size)) - 1 - (len(str(accuracy)) - 1)
            if digits > 0:
                rest //= 10 ** (len(str(accuracy)) - 1)
                parts.append(f"{whole}.{rest:0{digits}d}{suffix}")
                break
        parts.append(f"{whole}{suffix}")
        t = rest
    return " ".join(parts)
