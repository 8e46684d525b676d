"""The proxy's named timeouts and limits, in one place.

Every wait at the edge has a name, as Go's ``http.Server`` and nginx name theirs; the name is
the ``bindrop proxy`` option (``--request-head-timeout``), its ``BINDROP_PROXY_*`` twin, and
what the log line says when it fires. The defaults are nginx's where nginx has one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("bindrop.proxy")


@dataclass(frozen=True)
class Limits:
    #: A request head (request line and headers) must arrive within this many seconds of
    #: its first byte, and a new connection's first request head within as many seconds
    #: (408 and close: a visitor dribbling a head holds nothing for long).
    request_head_timeout: float = 15.0
    #: A kept-alive connection may wait this long for its next request.
    keepalive_timeout: float = 75.0
    #: An upload may take as long as it flows, but no byte for this long ends it (408).
    upload_idle_timeout: float = 60.0
    #: An app streaming an answer may go silent this long (then both sides are closed).
    answer_idle_timeout: float = 60.0
    #: A visitor that reads nothing of its answer for this long is cut off.
    visitor_idle_timeout: float = 60.0
    #: WebSocket (and other upgraded) tunnels and server-sent events may be silent both
    #: ways this long.
    tunnel_idle_timeout: float = 600.0
    #: The request line and headers together, in bytes, in one read or many (431).
    max_head_size: int = 32 * 1024
    #: Header fields in one request (431).
    max_headers: int = 100
    #: Open visitor connections per worker; more get 503 and are closed.
    max_connections: int = 10_000

    def smallest_timeout(self) -> float:
        return min(self.request_head_timeout, self.keepalive_timeout,
                   self.upload_idle_timeout, self.answer_idle_timeout,
                   self.visitor_idle_timeout, self.tunnel_idle_timeout)


def log_fired(name: str, seconds: float, what: str) -> None:
    """The log line of a timeout or limit that fired: its option name first."""
    log.info("%s (%g s) fired: %s", name, seconds, what)
