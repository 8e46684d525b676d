"""D-Bus type signatures, checked in pure Python before a value leaves bindrop.

systemd answers a value of the wrong type with an ``ENXIO`` that names no property, so
``conform`` checks each property value against its signature here, where the error can say
which property and why.
"""

from __future__ import annotations

from collections.abc import Sequence

_INT_RANGES: dict[str, tuple[int, int]] = {
    "y": (0, 2**8 - 1),
    "n": (-(2**15), 2**15 - 1),
    "q": (0, 2**16 - 1),
    "i": (-(2**31), 2**31 - 1),
    "u": (0, 2**32 - 1),
    "x": (-(2**63), 2**63 - 1),
    "t": (0, 2**64 - 1),
}


def split_types(signature: str) -> list[str]:
    """Split a signature into its complete types: ``"sasb"`` -> ``["s", "as", "b"]``.

    Supports the basic types ``s b y n q i u x t`` and arrays and structs of them; raises
    ``ValueError`` for anything else (dicts, variants, doubles are not needed here).
    """
    types = []
    start = 0
    while start < len(signature):
        end = _end_of_type(signature, start)
        types.append(signature[start:end])
        start = end
    return types


def conform(signature: str, value: object) -> object:
    """Return ``value`` in the shape dbus-fast's ``Variant(signature, value)`` accepts.

    Arrays become lists, structs tuples, ``ay`` bytes; integers are range-checked. Returns a
    fresh copy, so later changes to the caller's lists do not reach the result. Raises
    ``ValueError`` saying where the value does not fit.
    """
    if len(split_types(signature)) != 1:
        raise ValueError(f"signature {signature!r} is not one complete type")
    return _conform(signature, value)


def _end_of_type(sig: str, i: int) -> int:
    if i >= len(sig):
        raise ValueError(f"signature {sig!r} ends inside a type")
    c = sig[i]
    if c == "s" or c == "b" or c in _INT_RANGES:
        return i + 1
    if c == "a":
        return _end_of_type(sig, i + 1)
    if c == "(":
        i += 1
        if i < len(sig) and sig[i] == ")":
            raise ValueError(f"signature {sig!r} has an empty struct")
        while i < len(sig) and sig[i] != ")":
            i = _end_of_type(sig, i)
        if i >= len(sig):
            raise ValueError(f"signature {sig!r} has an unclosed struct")
        return i + 1
    raise ValueError(f"signature {sig!r}: type {c!r} is not supported")


def _conform(sig: str, value: object) -> object:
    if sig == "s":
        if not isinstance(value, str):
            raise ValueError(f"expected a str for 's', got {type(value).__name__}")
        if "\0" in value:
            raise ValueError("a D-Bus string cannot contain NUL")
        return value
    if sig == "b":
        if not isinstance(value, bool):
            raise ValueError(f"expected a bool for 'b', got {type(value).__name__}")
        return value
    if sig in _INT_RANGES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an int for {sig!r}, got {type(value).__name__}")
        low, high = _INT_RANGES[sig]
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range for {sig!r} ({low}..{high})")
        return value
    if sig == "ay":
        if not isinstance(value, bytes | bytearray):
            raise ValueError(f"expected bytes for 'ay', got {type(value).__name__}")
        return bytes(value)
    if sig.startswith("a"):
        items = _sequence(sig, value)
        return [_conform(sig[1:], item) for item in items]
    members = split_types(sig[1:-1])
    items = _sequence(sig, value)
    if len(items) != len(members):
        raise ValueError(f"struct {sig!r} needs {len(members)} members, got {len(items)}")
    return tuple(_conform(m, item) for m, item in zip(members, items, strict=True))


def _sequence(sig: str, value: object) -> Sequence[object]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list or tuple for {sig!r}, got {type(value).__name__}")
    return value
