"""The hub's route table: config and live state to the entries proxies read."""

from __future__ import annotations

from bindrop.hub.routetable import HostConflict, build_route_table
from bindrop.hub.state import AppRunState, AppView, Route
from bindrop.store import AppConfig


def test_an_app_without_a_view_is_stopped_with_no_upstream() -> None:
    entries, _ = build_route_table([AppConfig(name="a", hosts=("a.test",))], {})
    assert entries[0]["status"] == "stopped" and entries[0]["upstream"] is None


def test_a_routed_app_carries_its_unit_release_and_port() -> None:
    view = AppView("a", AppRunState.RUNNING, Route("bindrop-app-a-2.1.service", "2.1", 20002))
    entries, _ = build_route_table([AppConfig(name="a", hosts=("a.test",))], {"a": view})
    assert entries[0]["upstream"] == {"unit": "bindrop-app-a-2.1.service", "release": "2.1",
                                      "port": 20002}
    assert entries[0]["status"] == "running"


def test_a_crash_looping_app_keeps_its_status_for_the_proxy_to_show() -> None:
    view = AppView("a", AppRunState.CRASH_LOOPING, problem="exited with status 1")
    entries, _ = build_route_table([AppConfig(name="a", hosts=("a.test",))], {"a": view})
    assert entries[0]["status"] == "crash-looping"


def test_entries_are_sorted_by_app_name() -> None:
    entries, _ = build_route_table([AppConfig(name="b"), AppConfig(name="a")], {})
    assert [e["app"] for e in entries] == ["a", "b"]


def test_a_host_claimed_twice_stays_with_the_first_app_by_name_and_is_reported() -> None:
    entries, conflicts = build_route_table(
        [AppConfig(name="zeta", hosts=("x.test", "z.test")),
         AppConfig(name="alpha", hosts=("x.test",))], {})
    assert [(e["app"], e["hosts"]) for e in entries] == [("alpha", ["x.test"]),
                                                         ("zeta", ["z.test"])]
    assert conflicts == [HostConflict("x.test", "alpha", "zeta")]
    assert "zeta" in conflicts[0].describe()


def test_the_same_host_with_another_prefix_is_no_conflict() -> None:
    _, conflicts = build_route_table([AppConfig(name="a", hosts=("x.test",)),
                                      AppConfig(name="b", hosts=("x.test/api",))], {})
    assert conflicts == []
