"""systemd's D-Bus object paths for units, as pure functions.

systemd names a unit's object by escaping its name the way sd-bus escapes a path label:
every byte outside ``[A-Za-z0-9]``, and a leading digit, becomes ``_xx`` in lowercase hex
(systemd-lab.md: ``bindrop-x.service`` -> ``/org/freedesktop/systemd1/unit/bindrop_2dx_2eservice``).
"""

from __future__ import annotations

MANAGER_PATH = "/org/freedesktop/systemd1"
UNIT_PATH_PREFIX = "/org/freedesktop/systemd1/unit/"

_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_DIGITS = frozenset(b"0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")


def escape_label(label: str) -> str:
    """Escape one object-path label as sd-bus does (``bus_label_escape``); "" becomes "_"."""
    if not label:
        return "_"
    out: list[str] = []
    for i, byte in enumerate(label.encode()):
        if byte in _ALNUM and not (i == 0 and byte in _DIGITS):
            out.append(chr(byte))
        else:
            out.append(f"_{byte:02x}")
    return "".join(out)


def unescape_label(label: str) -> str:
    """Undo ``escape_label``. Raises ``ValueError`` on a label sd-bus could not have made."""
    if label == "_":
        return ""
    raw = bytearray()
    i = 0
    while i < len(label):
        char = label[i]
        if char == "_":
            pair = label[i + 1 : i + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise ValueError(f"bad escape in object path label {label!r}")
            raw.append(int(pair, 16))
            i += 3
        else:
            if not char.isascii() or not char.isalnum():
                raise ValueError(f"bad character in object path label {label!r}")
            raw.append(ord(char))
            i += 1
    return raw.decode(errors="surrogateescape")


def unit_path(name: str) -> str:
    """The object path of the unit called ``name``."""
    return UNIT_PATH_PREFIX + escape_label(name)


def unit_name_from_path(path: str) -> str | None:
    """The unit name of a unit object path, or None for any other path (or a malformed one)."""
    if not path.startswith(UNIT_PATH_PREFIX):
        return None
    label = path[len(UNIT_PATH_PREFIX) :]
    if not label or "/" in label:
        return None
    try:
        return unescape_label(label)
    except ValueError:
        return None


def unit_path_prefix(name_prefix: str) -> str:
    """The object path prefix shared by every unit whose name starts with ``name_prefix``.

    Escaping works byte by byte (the leading-digit rule only touches the first byte, which
    belongs to the prefix), so ``unit_path(name).startswith(unit_path_prefix(p))`` holds
    exactly when ``name.startswith(p)``. This lets a signal be filtered on its path before
    anything is unescaped.
    """
    if not name_prefix:
        return UNIT_PATH_PREFIX
    return UNIT_PATH_PREFIX + escape_label(name_prefix)
