"""The proxy's side of the hub <-> proxy wire protocol: message types and their parsing.

Pure: no IO. The hub writes these messages (``bindrop.hub.proxylink`` documents the exchange
and builds them as plain JSON); the proxy reads them with ``parse_message``. A newer hub may
add fields and statuses: unknown fields are ignored, an unknown status is kept as text.

On ``GET /v1/proxy/stream?proxy=<id>`` the hub sends newline-delimited JSON objects:

    {"type": "table", "version": 7, "apps": [APP, ...]}   the whole route table
    {"type": "drain", "unit": "bindrop-app-blog-3.service"}
    {"type": "ping"}

where APP is ``{"app", "hosts", "status", "upstream": {"unit", "release", "port"} | null,
"upstreams": [{"unit", "release", "port"}, ...] (every web instance; the proxy balances),
"maintenance_message", "body_limit", "on_demand", "hold", "https_redirect"}``. The proxy
answers with ``POST /v1/proxy/ack {"proxy", "version"}`` once it serves a table, and
``POST /v1/proxy/drained {"proxy", "unit"}`` once no request to that unit is in flight;
it reports apps that had requests with ``POST /v1/proxy/activity {"proxy", "apps"}`` and
wakes a stopped on-demand app with ``POST /v1/proxy/wake {"app"}`` (answered when ready).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bindrop.errors import InvalidInput

STREAM_PATH = "/v1/proxy/stream"
ACK_PATH = "/v1/proxy/ack"
DRAINED_PATH = "/v1/proxy/drained"
ACTIVITY_PATH = "/v1/proxy/activity"
WAKE_PATH = "/v1/proxy/wake"

#: Statuses in which the proxy forwards to the upstream (others answer 503).
SERVING = frozenset({"running", "starting"})
#: Statuses in which a request to an on-demand app asks the hub to start it.
WAKEABLE = frozenset({"stopped", "starting"})


@dataclass(frozen=True)
class Upstream:
    """One running release of an app, listening on 127.0.0.1:``port``."""

    unit: str
    release: str
    port: int


@dataclass(frozen=True)
class AppRoute:
    """Everything the proxy needs to answer for one app."""

    app: str
    hosts: tuple[str, ...]
    status: str
    upstream: Upstream | None = None
    maintenance_message: str | None = None
    body_limit: int = 100 * 1024 * 1024
    on_demand: bool = False
    hold: bool = False  # a no-overlap deploy: wait for the new route instead of a 503
    #: Plain-HTTP requests get a 308 to the same URL over https.
    https_redirect: bool = False
    #: every web instance that may take requests (``upstream`` is the first); a hub before
    #: process types sends only ``upstream``
    upstreams: tuple[Upstream, ...] = ()

    def __post_init__(self) -> None:
        if not self.upstreams and self.upstream is not None:
            object.__setattr__(self, "upstreams", (self.upstream,))

    @property
    def serving(self) -> bool:
        return self.upstream is not None and self.status in SERVING

    @property
    def wakeable(self) -> bool:
        return self.on_demand and not self.serving and self.status in WAKEABLE


@dataclass(frozen=True)
class RouteTable:
    version: int
    apps: tuple[AppRoute, ...] = ()


@dataclass(frozen=True)
class Drain:
    """The hub asks: answer when no request to ``unit`` is in flight."""

    unit: str


@dataclass(frozen=True)
class Ping:
    pass


Message = RouteTable | Drain | Ping


def parse_message(line: bytes | str) -> Message | None:
    """One line of the stream; ``None`` for a message type this proxy does not know.

    ``InvalidInput`` for a line that is not a JSON object or a known type with bad fields.
    """
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise InvalidInput(f"the hub sent a line that is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput("the hub sent a line that is not a JSON object")
    kind = data.get("type")
    if kind == "table":
        return parse_table(data)
    if kind == "drain":
        return Drain(_text(data, "unit"))
    if kind == "ping":
        return Ping()
    return None


def parse_table(data: Mapping[str, Any]) -> RouteTable:
    """A ``table`` message (or a snapshot of one) as a ``RouteTable``."""
    version = data.get("version")
    apps = data.get("apps")
    if not isinstance(version, int) or not isinstance(apps, list):
        raise InvalidInput("a route table needs an integer version and a list of apps")
    return RouteTable(version, tuple(_parse_app(a) for a in apps))


def render_table(table: RouteTable) -> dict[str, Any]:
    """The inverse of ``parse_table`` (for the proxy's snapshot on disk)."""
    return {"type": "table", "version": table.version, "apps": [
        {"app": a.app, "hosts": list(a.hosts), "status": a.status,
         "upstream": None if a.upstream is None else {
             "unit": a.upstream.unit, "release": a.upstream.release, "port": a.upstream.port},
         "upstreams": [{"unit": u.unit, "release": u.release, "port": u.port}
                       for u in a.upstreams],
         "maintenance_message": a.maintenance_message, "body_limit": a.body_limit,
         "on_demand": a.on_demand, "hold": a.hold, "https_redirect": a.https_redirect}
        for a in table.apps]}


def _parse_app(data: object) -> AppRoute:
    if not isinstance(data, dict):
        raise InvalidInput("an app in the route table is not a JSON object")
    hosts = data.get("hosts")
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise InvalidInput(f"app {data.get('app')!r}: hosts must be a list of strings")
    upstream = data.get("upstream")
    upstreams = data.get("upstreams")
    if upstreams is not None and not isinstance(upstreams, list):
        raise InvalidInput(f"app {data.get('app')!r}: upstreams must be a list")
    body_limit = data.get("body_limit", AppRoute.body_limit)
    if not isinstance(body_limit, int):
        raise InvalidInput(f"app {data.get('app')!r}: body_limit must be an integer")
    message = data.get("maintenance_message")
    return AppRoute(
        app=_text(data, "app"),
        hosts=tuple(hosts),
        status=_text(data, "status"),
        upstream=None if upstream is None else _parse_upstream(upstream),
        maintenance_message=message if isinstance(message, str) else None,
        body_limit=body_limit,
        on_demand=data.get("on_demand") is True,
        hold=data.get("hold") is True,
        https_redirect=data.get("https_redirect") is True,
        upstreams=tuple(_parse_upstream(u) for u in upstreams or ()),
    )


def _parse_upstream(data: object) -> Upstream:
    if not isinstance(data, dict) or not isinstance(data.get("port"), int):
        raise InvalidInput("an upstream needs a unit, a release and an integer port")
    return Upstream(_text(data, "unit"), _text(data, "release"), data["port"])


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise InvalidInput(f"the hub's message lacks a text {key!r}")
    return value
