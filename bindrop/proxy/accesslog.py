"""Access log: one JSON object per request on stdout, which systemd sends to the journal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class AccessRecord:
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
    """One line of JSON, keys in a fixed order. Pure."""
    # A dict by hand: dataclasses.asdict deep-copies, a measurable cost per request.
    return json.dumps({
        "method": record.method, "host": record.host, "path": record.path,
        "status": record.status, "bytes": record.bytes,
        "duration_ms": round(record.duration_ms, 2), "app": record.app,
        "release": record.release, "request_id": record.request_id,
    }, separators=(",", ":"))


class AccessLog:
    def __init__(self, out: TextIO | None) -> None:
        self.out = out

    def write(self, record: AccessRecord) -> None:
        if self.out is not None:
            self.out.write(render_access_line(record) + "\n")
