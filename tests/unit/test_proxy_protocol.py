"""The hub <-> proxy messages: what the hub builds, the proxy parses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bindrop.client.proxywire import (
    AppRoute,
    Drain,
    Ping,
    RouteTable,
    TlsState,
    Upstream,
    encode_line,
    parse_message,
    parse_table,
    render_table,
)
from bindrop.errors import InvalidInput
from bindrop.hub.routetable import build_route_table
from bindrop.hub.state import AppRunState, AppView, Route
from bindrop.proxy.snapshot import load_table, load_tls, save_table, save_tls, tls_snapshot_path
from bindrop.store import AppConfig


def test_a_table_the_hub_builds_is_the_table_the_proxy_reads() -> None:
    apps = [AppConfig(name="blog", hosts=("blog.test", "blog.test/api"), body_limit=10,
                      maintenance_message="soon", on_demand=True),
            AppConfig(name="idle", hosts=("idle.test",))]
    views = {"blog": AppView("blog", AppRunState.RUNNING,
                             Route("bindrop-app-blog-3.service", "3", 20001))}
    entries, _ = build_route_table(apps, views)
    line = encode_line(RouteTable(9, tuple(entries)))
    assert parse_message(line) == RouteTable(9, (
        AppRoute("blog", ("blog.test", "blog.test/api"), "running",
                 Upstream("bindrop-app-blog-3.service", "3", 20001), "soon", 10, True),
        AppRoute("idle", ("idle.test",), "stopped", None, None, AppConfig.body_limit, False),
    ))


def test_drain_and_ping_messages_parse_and_unknown_types_are_skipped() -> None:
    assert parse_message(b'{"type": "drain", "unit": "u.service"}') == Drain("u.service")
    assert parse_message('{"type": "ping"}') == Ping()
    assert parse_message('{"type": "from-the-future", "x": 1}') is None


def test_unknown_fields_and_statuses_from_a_newer_hub_are_tolerated() -> None:
    table = parse_message(json.dumps({"type": "table", "version": 1, "extra": True, "apps": [
        {"app": "a", "hosts": [], "status": "hibernating", "upstream": None, "new": 1}]}))
    assert isinstance(table, RouteTable) and table.apps[0].status == "hibernating"
    assert not table.apps[0].serving


@pytest.mark.parametrize("line", [
    b"not json", b"[1, 2]", b'{"type": "table", "version": "1", "apps": []}',
    b'{"type": "table", "version": 1, "apps": [{"app": "a", "hosts": "a.test", "status": "x"}]}',
    b'{"type": "table", "version": 1, "apps": [{"app": "a", "hosts": [], "status": "running",'
    b' "upstream": {"unit": "u", "release": "1", "port": "80"}}]}',
    b'{"type": "drain"}',
])
def test_a_malformed_message_is_refused(line: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_message(line)


def test_an_app_serves_only_when_running_or_starting_with_an_upstream() -> None:
    up = Upstream("u", "1", 1)
    assert AppRoute("a", (), "running", up).serving
    assert AppRoute("a", (), "starting", up).serving
    assert not AppRoute("a", (), "restarting", up).serving
    assert not AppRoute("a", (), "running", None).serving


def test_a_rendered_table_parses_back_to_itself() -> None:
    table = RouteTable(4, (AppRoute("a", ("a.test",), "running", Upstream("u", "1.2", 3),
                                    "msg", 5, True),))
    assert parse_table(render_table(table)) == table


def test_a_snapshot_round_trips_and_a_broken_one_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "state" / "proxy-routes.json"
    assert load_table(path) is None
    table = RouteTable(2, (AppRoute("a", ("a.test",), "running", Upstream("u", "1", 3)),))
    save_table(path, table)
    assert load_table(path) == table
    assert [p.name for p in path.parent.iterdir()] == ["proxy-routes.json"]
    path.write_text("{half")
    assert load_table(path) is None


def test_a_tls_snapshot_round_trips_beside_the_routes_and_a_broken_one_is_ignored(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    routes = tmp_path / "state" / "proxy-routes.json"
    path = tls_snapshot_path(routes)
    assert path.parent == routes.parent and path != routes
    assert load_tls(path) is None
    state = TlsState(7, {}, frozenset({"secure.test"}), frozenset({"secure.test", "b.test"}),
                     600, 3)
    save_tls(path, state)
    assert load_tls(path) == state
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    # A challenge answer is for an order the hub runs now: it is not kept across restarts.
    save_tls(path, TlsState(8, {"tok": "tok.thumb"}, frozenset({"a.test"})))
    assert load_tls(path) == TlsState(8, {}, frozenset({"a.test"}))
    for damaged in ("{half", "[]", '{"type": "tls", "version": "x"}',
                    '{"type": "table", "version": 1, "apps": []}'):
        path.write_text(damaged)
        caplog.clear()
        assert load_tls(path) is None, damaged
        assert "ignoring the TLS snapshot" in caplog.text


def test_a_holding_app_reaches_the_proxy_as_hold() -> None:
    apps = [AppConfig(name="single", hosts=("single.test",), no_overlap=True)]
    views = {"single": AppView("single", AppRunState.STARTING, holding=True)}
    entries, _ = build_route_table(apps, views)
    table = parse_message(encode_line(RouteTable(1, tuple(entries))))
    assert isinstance(table, RouteTable)
    assert table.apps[0].hold and not table.apps[0].serving
    assert parse_table(render_table(table)) == table
