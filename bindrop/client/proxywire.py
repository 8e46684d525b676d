"""The wire between the hub and its proxies: every message, its path, render and parse.

One module owns the protocol so both ends speak it from one definition: the hub
(``bindrop.hub.proxylink`` builds and sends, ``bindrop.api.proxylink`` serves the paths) and
the proxy (``bindrop.proxy.hublink`` follows the stream and reports back). It lives in
``bindrop.client`` because the proxy may import only ``errors``, ``settings``, ``proxy`` and
the client package, and it is the proxy's client of the hub; the hub and the API import this
one module of the client package and nothing else of it. Pure: no IO. A newer hub may add
fields and statuses: unknown fields are ignored, an unknown status is kept as text.

Hub to proxy, on ``GET /v1/proxy/stream?proxy=<id>``, newline-delimited JSON objects
(``encode_line`` / ``parse_message``):

    {"type": "table", "version": 7, "apps": [APP, ...]}   the whole route table
    {"type": "drain", "unit": "bindrop-app-blog-3.service"}
    {"type": "ping"}

where APP is ``{"app", "hosts", "status", "upstream": {"unit", "release", "port"} | null,
"upstreams": [{"unit", "release", "port"}, ...] (every web instance; the proxy balances),
"maintenance_message", "body_limit", "on_demand", "hold", "https_redirect"}``.

Automatic HTTPS adds ``{"type": "tls", "version": N, "challenges": {TOKEN: KEY_AUTH},
"redirect": [HOST], "hsts": [HOST], "hsts_max_age": S, "certs": C}``: the ACME HTTP-01
answers to serve, the hosts whose plain HTTP gets a 308 to https, those whose HTTPS answers
carry Strict-Transport-Security, and a certificate version (reload the files when it
changes). The proxy acknowledges its version as it does a table's.

Proxy to hub, JSON bodies posted to the paths below (``render_report`` / ``parse_ack`` and
its siblings): ``POST /v1/proxy/ack {"proxy", "version"}`` once it serves a table (or a tls
message), ``POST /v1/proxy/drained {"proxy", "unit"}`` once no request to that unit is in
flight, ``POST /v1/proxy/activity {"proxy", "apps"}`` with the apps that had requests, and
``POST /v1/proxy/wake {"app"}`` to start a stopped on-demand app (answered when ready).

Every few seconds it reports what it counted since its last report (deltas) with
``POST /v1/proxy/traffic {"proxy", "buckets": LATENCY_BUCKETS, "traffic": [ENTRY, ...]}``
where ENTRY is ``{"app", "release", "requests", "classes": {"none"|"1xx".."5xx": n},
"gateway": {"502"|"503"|"504": n}, "bytes_in", "bytes_out", "latency_sum" (seconds),
"latency": [n per bucket of LATENCY_BUCKETS, then one for +Inf]}`` (classes and gateway
codes with no request are left out; "none" counts requests that got no answer).

The protocol's version is the ``v1`` in its paths (``VERSION``); a change that an older
proxy or hub cannot read gets new paths.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bindrop.errors import InvalidInput

#: The protocol's version: the first part of every path.
VERSION = "v1"
_PREFIX = f"/{VERSION}/proxy"
STREAM_PATH = f"{_PREFIX}/stream"
ACK_PATH = f"{_PREFIX}/ack"
DRAINED_PATH = f"{_PREFIX}/drained"
ACTIVITY_PATH = f"{_PREFIX}/activity"
WAKE_PATH = f"{_PREFIX}/wake"
TRAFFIC_PATH = f"{_PREFIX}/traffic"
#: Every path of the wire: the hub serves each, the proxy uses each.
PATHS = (STREAM_PATH, ACK_PATH, DRAINED_PATH, ACTIVITY_PATH, WAKE_PATH, TRAFFIC_PATH)

#: Upper bounds (seconds, inclusive) of the latency histogram's buckets; +Inf follows.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The answer classes a traffic entry counts ("none": no answer at all).
CLASSES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")
#: The gateway errors a traffic entry counts apart.
GATEWAY_CODES = ("502", "503", "504")

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


#: What the hub sends on the stream.
Message = RouteTable | Drain | Ping | TlsState


@dataclass(frozen=True)
class Ack:
    """The proxy serves table (or tls message) ``version``."""

    proxy: str
    version: int


@dataclass(frozen=True)
class Drained:
    """No request to ``unit`` is in flight at the proxy (the answer to a ``Drain``)."""

    proxy: str
    unit: str


@dataclass(frozen=True)
class Activity:
    """These apps had requests since the last report (for idle stops)."""

    proxy: str
    apps: tuple[str, ...]


@dataclass(frozen=True)
class Wake:
    """Start the on-demand ``app``; the hub answers once it is ready."""

    app: str


@dataclass(frozen=True)
class TrafficEntry:
    """What one proxy counted for one app and release since its last report."""

    app: str
    release: str
    requests: int
    classes: Mapping[str, int]
    gateway: Mapping[str, int]
    bytes_in: int
    bytes_out: int
    latency_sum: float
    #: one count per bucket of ``LATENCY_BUCKETS``, then one for +Inf
    latency: tuple[int, ...]


@dataclass(frozen=True)
class TrafficReport:
    proxy: str
    traffic: tuple[TrafficEntry, ...]


#: What the proxy posts to the hub.
Report = Ack | Drained | Activity | Wake | TrafficReport

_REPORT_PATHS: dict[type[Report], str] = {
    Ack: ACK_PATH, Drained: DRAINED_PATH, Activity: ACTIVITY_PATH, Wake: WAKE_PATH,
    TrafficReport: TRAFFIC_PATH}

#: An ACME token and key authorization: base64url text (RFC 8555 section 8.3).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_KEY_AUTH = re.compile(r"[A-Za-z0-9_-]{1,256}\.[A-Za-z0-9_-]{1,256}")


def encode_line(message: Message) -> bytes:
    """One line of the stream. Pure."""
    return json.dumps(render_message(message), separators=(",", ":")).encode() + b"\n"


def render_message(message: Message) -> dict[str, Any]:
    """A stream message as JSON (the inverse of ``parse_message``). Pure."""
    if isinstance(message, RouteTable):
        return render_table(message)
    if isinstance(message, Drain):
        return {"type": "drain", "unit": message.unit}
    if isinstance(message, Ping):
        return {"type": "ping"}
    return render_tls(message)


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


def render_tls(tls: TlsState) -> dict[str, Any]:
    """The inverse of ``parse_tls``. Pure."""
    return {"type": "tls", "challenges": dict(tls.challenges),
            "redirect": sorted(tls.redirect), "hsts": sorted(tls.hsts),
            "hsts_max_age": tls.hsts_max_age, "certs": tls.certs, "version": tls.version}


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


# -- what the proxy posts -----------------------------------------------------------------


def report_path(report: Report) -> str:
    """Where the proxy posts ``report``."""
    return _REPORT_PATHS[type(report)]


def render_report(report: Report) -> dict[str, Any]:
    """A report as the JSON body the proxy posts. Pure."""
    if isinstance(report, Ack):
        return {"proxy": report.proxy, "version": report.version}
    if isinstance(report, Drained):
        return {"proxy": report.proxy, "unit": report.unit}
    if isinstance(report, Activity):
        return {"proxy": report.proxy, "apps": list(report.apps)}
    if isinstance(report, Wake):
        return {"app": report.app}
    return {"proxy": report.proxy, "buckets": list(LATENCY_BUCKETS),
            "traffic": [render_traffic_entry(e) for e in report.traffic]}


# The parsers below read bodies a proxy posted; ``InvalidInput`` (the API answers 400 with
# its message) for a body the hub cannot take.


def parse_ack(body: Mapping[str, Any]) -> Ack:
    version = body.get("version")
    if not isinstance(version, int):
        raise InvalidInput("version must be an integer")
    return Ack(_proxy_id(body), version)


def parse_drained(body: Mapping[str, Any]) -> Drained:
    unit = body.get("unit")
    if not isinstance(unit, str):
        raise InvalidInput("unit must be a unit name")
    return Drained(_proxy_id(body), unit)


def parse_activity(body: Mapping[str, Any]) -> Activity:
    apps = body.get("apps")
    if not isinstance(apps, list) or not all(isinstance(a, str) for a in apps):
        raise InvalidInput("apps must be a list of app names")
    return Activity(_proxy_id(body), tuple(apps))


def parse_wake(body: Mapping[str, Any]) -> Wake:
    app = body.get("app")
    if not isinstance(app, str):
        raise InvalidInput("app must be an app name")
    return Wake(app)


def parse_traffic(body: Mapping[str, Any]) -> TrafficReport:
    """A proxy's whole traffic report; ``InvalidInput`` if its buckets are not ours."""
    proxy = _proxy_id(body)
    buckets = body.get("buckets")
    if not isinstance(buckets, list) or tuple(buckets) != LATENCY_BUCKETS:
        raise InvalidInput("the report's latency buckets differ from the hub's; "
                           "upgrade the proxy and the hub together")
    entries = body.get("traffic")
    if not isinstance(entries, list):
        raise InvalidInput("traffic must be a list of entries")
    return TrafficReport(proxy, tuple(parse_traffic_entry(e) for e in entries))


def render_traffic_entry(entry: TrafficEntry) -> dict[str, Any]:
    """One entry of a traffic report as JSON (the inverse of ``parse_traffic_entry``)."""
    return {"app": entry.app, "release": entry.release, "requests": entry.requests,
            "classes": dict(entry.classes), "gateway": dict(entry.gateway),
            "bytes_in": entry.bytes_in, "bytes_out": entry.bytes_out,
            "latency_sum": entry.latency_sum, "latency": list(entry.latency)}


_MAX_COUNT = 2**53  # what a JSON number carries exactly


def _count(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _MAX_COUNT:
        raise InvalidInput(f"{what} must be a count")
    return value


def parse_traffic_entry(entry: object) -> TrafficEntry:
    """One entry of a traffic report; ``InvalidInput`` for anything malformed."""
    if not isinstance(entry, dict):
        raise InvalidInput("a traffic entry must be a JSON object")
    app, release = entry.get("app"), entry.get("release")
    if not isinstance(app, str) or not isinstance(release, str) or not app:
        raise InvalidInput("a traffic entry needs an app and a release (text)")
    classes, gateway = entry.get("classes"), entry.get("gateway")
    latency = entry.get("latency")
    latency_sum = entry.get("latency_sum")
    if not isinstance(classes, dict) or not set(classes) <= set(CLASSES):
        raise InvalidInput(f"classes must map {', '.join(CLASSES)} to counts")
    if not isinstance(gateway, dict) or not set(gateway) <= set(GATEWAY_CODES):
        raise InvalidInput(f"gateway must map {', '.join(GATEWAY_CODES)} to counts")
    if not isinstance(latency, list) or len(latency) != len(LATENCY_BUCKETS) + 1:
        raise InvalidInput(f"latency must hold {len(LATENCY_BUCKETS) + 1} counts")
    if (not isinstance(latency_sum, (int, float)) or isinstance(latency_sum, bool)
            or not math.isfinite(latency_sum) or latency_sum < 0):
        raise InvalidInput("latency_sum must be a number of seconds")
    return TrafficEntry(
        app=app, release=release,
        requests=_count(entry.get("requests"), "requests"),
        classes={k: _count(v, "a class") for k, v in classes.items()},
        gateway={k: _count(v, "a gateway code") for k, v in gateway.items()},
        bytes_in=_count(entry.get("bytes_in"), "bytes_in"),
        bytes_out=_count(entry.get("bytes_out"), "bytes_out"),
        latency_sum=float(latency_sum),
        latency=tuple(_count(n, "a latency bucket") for n in latency))


def _proxy_id(body: Mapping[str, Any]) -> str:
    proxy = body.get("proxy")
    if not isinstance(proxy, str) or not proxy:
        raise InvalidInput("proxy must be the id the proxy streamed with")
    return proxy


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise InvalidInput(f"the hub's message lacks a text {key!r}")
    return value
