"""The one wire between the hub and its proxies: every message survives render and parse, and
both ends take their paths from it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, get_args

import pytest
from aiohttp import web

from bindrop.api import proxylink as api_end
from bindrop.client import proxywire
from bindrop.client.proxywire import (
    ACK_PATH,
    ACTIVITY_PATH,
    DRAINED_PATH,
    LATENCY_BUCKETS,
    PATHS,
    STREAM_PATH,
    TRAFFIC_PATH,
    WAKE_PATH,
    Ack,
    Activity,
    AppRoute,
    Drain,
    Drained,
    Message,
    Ping,
    Report,
    RouteTable,
    TlsState,
    TrafficEntry,
    TrafficReport,
    Upstream,
    Wake,
    encode_line,
    parse_ack,
    parse_activity,
    parse_drained,
    parse_message,
    parse_traffic,
    parse_wake,
    render_report,
    report_path,
)
from bindrop.errors import InvalidInput
from bindrop.hub.proxylink import ProxyLink
from bindrop.hub.pubsub import PubSub
from bindrop.hub.state import StateStore
from bindrop.proxy import hublink as proxy_end
from bindrop.settings import Settings
from bindrop.store import Store

from .test_layering import BINDROP_DIR, NO_IO, imported_modules

UP = Upstream("bindrop-app-blog-3.service", "3", 20001)
MESSAGES: tuple[Message, ...] = (
    RouteTable(7, (
        AppRoute("blog", ("blog.test", "blog.test/api"), "running", UP, "soon", 10,
                 on_demand=True, hold=True, https_redirect=True,
                 upstreams=(UP, Upstream("bindrop-app-blog-3_web_2.service", "3_web_2", 20002))),
        AppRoute("idle", ("idle.test",), "stopped"),
        AppRoute("future", (), "hibernating", None, None, 1),
    )),
    RouteTable(1),
    Drain("bindrop-app-blog-3.service"),
    Ping(),
    TlsState(4, {"tok_EN-1": "tok_EN-1.thumb-print_2"}, frozenset({"blog.test", "a.test"}),
             frozenset({"blog.test"}), 600, 3),
    TlsState(),
)
ENTRY = TrafficEntry("blog", "3", 4, {"2xx": 2, "5xx": 1, "none": 1}, {"502": 1}, 10, 157,
                     30.2, (2,) + (0,) * (len(LATENCY_BUCKETS) - 1) + (1,))
REPORTS: tuple[Report, ...] = (
    Ack("proxy-1", 7),
    Drained("proxy-1", "bindrop-app-blog-3.service"),
    Activity("proxy-1", ("blog", "idle")),
    Activity("proxy-1", ()),
    Wake("idle"),
    TrafficReport("proxy-1", (ENTRY, TrafficEntry("blog", "", 1, {}, {}, 0, 0, 0.0,
                                                  (0,) * (len(LATENCY_BUCKETS) + 1)))),
    TrafficReport("proxy-1", ()),
)
#: How the hub reads what the proxy posts to each path.
PARSERS: dict[str, Callable[[Mapping[str, Any]], Report]] = {
    ACK_PATH: parse_ack, DRAINED_PATH: parse_drained, ACTIVITY_PATH: parse_activity,
    WAKE_PATH: parse_wake, TRAFFIC_PATH: parse_traffic}


def test_the_cases_cover_every_message_and_report_of_the_wire() -> None:
    assert {type(m) for m in MESSAGES} == set(get_args(Message))
    assert {type(r) for r in REPORTS} == set(get_args(Report))


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_stream_message_parses_back_to_itself(message: Message) -> None:
    line = encode_line(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert parse_message(line) == message


@pytest.mark.parametrize("report", REPORTS, ids=lambda r: type(r).__name__)
def test_every_report_parses_back_to_itself_at_its_path(report: Report) -> None:
    body = json.loads(json.dumps(render_report(report)))  # through JSON, as it travels
    assert PARSERS[report_path(report)](body) == report


def test_every_report_has_its_own_path_and_the_stream_the_last() -> None:
    paths = [report_path(r) for r in {type(r): r for r in REPORTS}.values()]
    assert sorted(paths) == sorted(set(paths))
    assert sorted({STREAM_PATH, *paths}) == sorted(PATHS)
    assert all(p.startswith(f"/{proxywire.VERSION}/proxy/") for p in PATHS)


@pytest.mark.parametrize(("parse", "body", "why"), [
    (parse_ack, {"proxy": "p", "version": "7"}, "version must be an integer"),
    (parse_ack, {"version": 7}, "proxy must be the id"),
    (parse_ack, {"proxy": "", "version": 7}, "proxy must be the id"),
    (parse_drained, {"proxy": "p", "unit": 3}, "unit must be a unit name"),
    (parse_activity, {"proxy": "p", "apps": "blog"}, "apps must be a list of app names"),
    (parse_activity, {"proxy": "p", "apps": [1]}, "apps must be a list of app names"),
    (parse_wake, {"app": None}, "app must be an app name"),
    (parse_traffic, {"buckets": list(LATENCY_BUCKETS), "traffic": []}, "proxy must be"),
    (parse_traffic, {"proxy": "p", "buckets": [1], "traffic": []}, "buckets differ"),
    (parse_traffic, {"proxy": "p", "buckets": list(LATENCY_BUCKETS), "traffic": {}},
     "traffic must be a list"),
])
def test_a_malformed_report_is_refused_with_why(
        parse: Callable[[Mapping[str, Any]], Report], body: dict[str, Any], why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        parse(body)


def test_the_wire_is_pure_so_the_hub_may_import_it_from_the_client_package() -> None:
    path = BINDROP_DIR / "client" / "proxywire.py"
    modules = {m for _, m in imported_modules(path, BINDROP_DIR)}
    bindrop_modules = {m for m in modules if m.startswith("bindrop.")}
    assert bindrop_modules <= {"bindrop.errors", "bindrop.errors.InvalidInput"}
    assert not [m for m in modules
                if any(m == n or m.startswith(n + ".") for n in NO_IO)]
    assert all(m.split(".")[0] in sys.stdlib_module_names or m.startswith("bindrop.")
               for m in modules)


def test_the_hub_and_the_proxy_take_every_path_from_the_wire() -> None:
    # Imported, not written again: each end's name is the wire's very object.
    for name in ("STREAM_PATH", "ACK_PATH", "DRAINED_PATH", "ACTIVITY_PATH", "WAKE_PATH",
                 "TRAFFIC_PATH"):
        assert getattr(api_end, name) is getattr(proxywire, name), name
    assert proxy_end.STREAM_PATH is proxywire.STREAM_PATH
    # The proxy posts each report where report_path says, which is the wire's.
    assert proxy_end.report_path is report_path and proxy_end.render_report is render_report


async def test_the_api_serves_the_link_at_the_wire_paths(tmp_path: Path) -> None:
    with Store.open(Settings(root=tmp_path)) as store:
        link = ProxyLink(StateStore(), store, PubSub())
        app = web.Application()
        api_end.add_proxy_routes(app, link)
        served = {(r.method, r.resource.canonical) for r in app.router.routes()
                  if r.resource is not None}
        link.close()
    # without a hub: no wake and no traffic (those need the hub's on-demand and metrics)
    assert served == {("GET", STREAM_PATH), ("HEAD", STREAM_PATH), ("POST", ACK_PATH),
                      ("POST", DRAINED_PATH), ("POST", ACTIVITY_PATH)}
    assert {p for _, p in served} <= set(PATHS)
