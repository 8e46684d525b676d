"""Access log: one JSON object per request on stdout, which systemd sends to the journal."""

from __future__ import annotations

import asyncio
from json.encoder import encode_basestring_ascii
from typing import NamedTuple, TextIO

_string = encode_basestring_ascii  # what json.dumps uses for str (C)


class AccessRecord(NamedTuple):
    """One request (a tuple: made once per request, cheaper than a frozen dataclass)."""

    method: str
    host: str
    path: str
    status: int
    bytes: int
    duration_ms: float
    app: str | None
    release: str | None
    request_id: str


def render_access_line(record: AccessRecord) -> str:
    """One line of JSON, keys in a fixed order, as ``json.dumps`` would write it. Pure."""
    # By hand, with json's own string encoder: json.dumps of a dict costs several times more,
    # once per request.
    return (f'{{"method":{_string(record.method)},"host":{_string(record.host)},'
            f'"path":{_string(record.path)},"status":{record.status},"bytes":{record.bytes},'
            f'"duration_ms":{round(record.duration_ms, 2)!r},"app":{_maybe(record.app)},'
            f'"release":{_maybe(record.release)},"request_id":{_string(record.request_id)}}}')


def _maybe(value: str | None) -> str:
    return "null" if value is None else _string(value)


class AccessLog:
    """Writes access lines to ``out``: those of one event-loop turn in one write (one
    syscall, one journal read for many requests under load)."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self._lines: list[str] = []

    def write(self, record: AccessRecord) -> None:
        if self.out is None:
            return
        if not self._lines:
            asyncio.get_running_loop().call_soon(self.flush)
        self._lines.append(render_access_line(record))

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if lines and self.out is not None:
            self.out.write("\n".join(lines) + "\n")
