"""The hub's route table: config and live state to the entries proxies read, and the
control API's route."""

from __future__ import annotations

import pytest

from bindrop.client.proxywire import AppRoute, RouteTable, Upstream, parse_table, render_table
from bindrop.errors import Conflict
from bindrop.hub.routetable import (
    CONTROL_ENTRY,
    ControlRoute,
    HostConflict,
    build_route_table,
    check_hosts_free,
)
from bindrop.hub.state import AppRunState, AppView, Route
from bindrop.proxy.table import build_lookup, match_route
from bindrop.store import AppConfig


def test_an_app_without_a_view_is_stopped_with_no_upstream() -> None:
    entries, _ = build_route_table([AppConfig(name="a", hosts=("a.test",))], {})
    assert entries[0].status == "stopped" and entries[0].upstream is None


def test_a_routed_app_carries_its_unit_release_and_port() -> None:
    view = AppView("a", AppRunState.RUNNING, Route("bindrop-app-a-2.1.service", "2.1", 20002))
    entries, _ = build_route_table([AppConfig(name="a", hosts=("a.test",))], {"a": view})
    assert entries[0].upstream == Upstream("bindrop-app-a-2.1.service", "2.1", 20002)
    assert entries[0].status == "running"


def test_a_crash_looping_app_keeps_its_status_for_the_proxy_to_show() -> None:
    view = AppView("a", AppRunState.CRASH_LOOPING, problem="exited with status 1")
    entries, _ = build_route_table([AppConfig(name="a", hosts=("a.test",))], {"a": view})
    assert entries[0].status == "crash-looping"


def test_entries_are_sorted_by_app_name() -> None:
    entries, _ = build_route_table([AppConfig(name="b"), AppConfig(name="a")], {})
    assert [e.app for e in entries] == ["a", "b"]


def test_a_host_claimed_twice_stays_with_the_first_app_by_name_and_is_reported() -> None:
    entries, conflicts = build_route_table(
        [AppConfig(name="zeta", hosts=("x.test", "z.test")),
         AppConfig(name="alpha", hosts=("x.test",))], {})
    assert [(e.app, e.hosts) for e in entries] == [("alpha", ("x.test",)),
                                                   ("zeta", ("z.test",))]
    assert conflicts == [HostConflict("x.test", "alpha", "zeta")]
    assert "zeta" in conflicts[0].describe()


def test_the_same_host_with_another_prefix_is_no_conflict() -> None:
    _, conflicts = build_route_table([AppConfig(name="a", hosts=("x.test",)),
                                      AppConfig(name="b", hosts=("x.test/api",))], {})
    assert conflicts == []


CONTROL = ControlRoute("bindrop.localhost", 7300, 1 << 30)


def test_the_control_route_comes_first_and_forwards_to_the_api_port() -> None:
    entries, conflicts = build_route_table([AppConfig(name="a", hosts=("a.test",))], {},
                                           CONTROL)
    assert entries[0] == AppRoute(
        app=CONTROL_ENTRY, hosts=("bindrop.localhost",), status="running",
        upstream=Upstream("bindrop.service", "api", 7300),
        maintenance_message=None, body_limit=1 << 30, on_demand=False)
    assert [e.app for e in entries[1:]] == ["a"] and conflicts == []


def test_without_a_tcp_port_there_is_no_control_route() -> None:
    entries, _ = build_route_table([AppConfig(name="a", hosts=("a.test",))], {})
    assert [e.app for e in entries] == ["a"]


def test_an_app_stored_with_the_control_host_loses_it_and_is_reported() -> None:
    entries, conflicts = build_route_table(
        [AppConfig(name="sneaky", hosts=("bindrop.localhost/v1", "sneaky.test"))], {},
        CONTROL)
    assert entries[1].hosts == ("sneaky.test",)
    assert conflicts == [HostConflict("bindrop.localhost/v1", CONTROL_ENTRY, "sneaky")]


def test_the_control_route_reaches_the_proxy_as_a_route_to_the_api() -> None:
    entries, _ = build_route_table([AppConfig(name="a", hosts=("a.test",))], {}, CONTROL)
    lookup = build_lookup(parse_table(render_table(RouteTable(1, tuple(entries)))))
    route = match_route(lookup, "Bindrop.localhost:8080", "/v1/apps")
    assert route is not None and route.serving and route.upstream is not None
    assert (route.app, route.upstream.port) == (CONTROL_ENTRY, 7300)


@pytest.mark.parametrize("host", ["bindrop.localhost", "BINDROP.localhost",
                                  "bindrop.localhost/api", "bindrop.localhost/"])
def test_an_app_may_not_claim_the_control_host(host: str) -> None:
    with pytest.raises(Conflict, match="control API"):
        check_hosts_free(["ok.test", host], "bindrop.localhost")


def test_hosts_around_the_control_host_are_free() -> None:
    check_hosts_free(["x.bindrop.localhost", "bindrop.localhost.test", "localhost"],
                     "bindrop.localhost")
