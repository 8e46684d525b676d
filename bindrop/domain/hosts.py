"""The hosts an app answers on: a DNS name, optionally with a path prefix.

Pure. ``parse_host`` is the one place that decides what a host string may be and how it is
written down, so the uniqueness of a host (+ prefix) in the store means what it says.
"""

from __future__ import annotations

import re

from bindrop.errors import InvalidInput

HOST_MAX = 253
PREFIX_MAX = 200

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")


def parse_host(text: str) -> str:
    """Return the canonical form of a host such as ``"Example.com"`` or ``"example.com/api"``.

    The name is lowercased (DNS names are not case-sensitive); a path prefix keeps its case and
    loses a trailing ``/`` (``"example.com/api/"`` is ``"example.com/api"``, and
    ``"example.com/"`` is ``"example.com"``). ``InvalidInput`` for anything that is not a DNS
    name of labels ``[a-z0-9-]`` (1-63 characters, no leading or trailing ``-``, 253 in all)
    followed by an optional prefix of ``/``-separated segments of ``[A-Za-z0-9._~-]``: no
    scheme, port, wildcard, query, empty segment, ``.`` or ``..``.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"host {text!r} is not valid: give a name such as example.com")
    name, slash, prefix = text.partition("/")
    name = name.lower()
    if "://" in text:
        raise InvalidInput(
            f"host {text!r} is not valid: leave out the scheme, e.g. example.com or example.com/api"
        )
    if (
        not name
        or len(name) > HOST_MAX
        or not all(_LABEL.fullmatch(label) for label in name.split("."))
    ):
        raise InvalidInput(
            f"host {text!r} is not valid: use a DNS name such as example.com or "
            "app.example.com (letters, digits, '-' and '.'; no port, no wildcard), optionally "
            "followed by a path prefix such as /api"
        )
    prefix = prefix.rstrip("/")
    if not slash or not prefix:
        return name
    segments = prefix.split("/")
    if len(prefix) > PREFIX_MAX or any(
        seg in (".", "..") or not _SEGMENT.fullmatch(seg) for seg in segments
    ):
        raise InvalidInput(
            f"path prefix in host {text!r} is not valid: use segments of letters, digits and "
            f"'.', '_', '~', '-' separated by single '/' (at most {PREFIX_MAX} characters), "
            "such as example.com/api/v1"
        )
    return f"{name}/{prefix}"
