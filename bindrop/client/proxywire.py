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

Automatic HTTPS adds ``{"type": "tls", "version": N, "challenges": {TOKEN: KEY_AUTH},
"redirect": [HOST], "hsts": [HOST], "hsts_max_age": S, "certs": C}``: the ACME HTTP-01
answers to serve, the hosts whose plain HTTP gets a 308 to https, those whose HTTPS answers
carry Strict-Transport-Security, and a certificate version (reload the files when it
changes). The proxy acknowledges its version as it does a table's.

Every few seconds it reports what it counted since its last report (deltas) with
``POST /v1/proxy/traffic {"proxy", "buckets": LATENCY_BUCKETS, "traffic": [ENTRY, ...]}``
where ENTRY is ``{"app", "release", "requests", "classes": {"none"|"1xx".."5xx": n},
"gateway": {"502"|"503"|"504": n}, "bytes_in", "bytes_out", "latency_sum" (seconds),
"latency": [n per bucket of LATENCY_BUCKETS, then one for +Inf]}`` (classes and gateway
codes with no request are left out; "none" counts requests that got no answer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bindrop.errors import InvalidInput

STREAM_PATH = "/v1/proxy/stream"
ACK_PATH = "/v1/proxy/ack"
DRAINED_PATH = "/v1/proxy/drained"
ACTIVITY_PATH = "/v1/proxy/activity"
WAKE_PATH = "/v1/proxy/wake"
TRAFFIC_PATH = "/v1/proxy/traffic"

#: Upper bounds (seconds, inclusive) of the latency histogram's buckets; +Inf follows.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

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


@dataclass(frozen=True)
class TlsState:
    """What automatic HTTPS asks of the proxy (see the module's docstring)."""

    version: int = 0
    challenges: Mapping[str, str] = field(default_factory=dict)
    redirect: frozenset[str] = frozenset()
    hsts: frozenset[str] = frozenset()
    hsts_max_age: int = 31536000
    certs: int = 0


Message = RouteTable | Drain | Ping | TlsState

#: An ACME token and key authorization: base64url text (RFC 8555 section 8.3).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_KEY_AUTH = re.compile(r"[A-Za-z0-9_-]{1,256}\.[A-Za-z0-9_-]{1,256}")


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
    if kind == "tls":
        return parse_tls(data)
    return None


def parse_tls(data: Mapping[str, Any]) -> TlsState:
    """A ``tls`` message; ``InvalidInput`` for a token or answer that is not base64url."""
    version, certs, max_age = data.get("version"), data.get("certs", 0), \
        data.get("hsts_max_age", TlsState.hsts_max_age)
    if not all(isinstance(v, int) and not isinstance(v, bool)
               for v in (version, certs, max_age)):
        raise InvalidInput("a tls message needs integer version, certs and hsts_max_age")
    challenges = data.get("challenges") or {}
    if not isinstance(challenges, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and _TOKEN.fullmatch(k)
            and _KEY_AUTH.fullmatch(v) and v.startswith(k + ".")
            for k, v in challenges.items()):
        raise InvalidInput("a tls message's challenges must map tokens to key authorizations")
    assert isinstance(version, int)
    return TlsState(version, dict(challenges), _names(data, "redirect"), _names(data, "hsts"),
                    max_age, certs)


def _names(data: Mapping[str, Any], key: str) -> frozenset[str]:
    names = data.get(key) or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidInput(f"a tls message's {key} must be a list of host names")
    return frozenset(n.lower() for n in names)


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
