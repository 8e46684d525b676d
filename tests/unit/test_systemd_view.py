"""The watcher's pure core, fed messages in wire order as the lab saw them on systemd 252."""

from __future__ import annotations

from typing import Any

from bindrop.systemd.events import Resynced, ResyncReason, UnitChanged, UnitGone, WatchEvent
from bindrop.systemd.types import (
    ActiveState,
    LoadState,
    SubState,
    UnitListing,
    UnitResult,
    is_given_up,
)
from bindrop.systemd.view import UnitView, build_unit_state, is_ghost

NAME = "bindrop-x.service"


def unit_props(active: str, sub: str, stamp: int, job: int = 0) -> dict[str, Any]:
    """A Unit-interface PropertiesChanged body (plain values)."""
    return {"ActiveState": active, "SubState": sub, "Job": (job, "/"),
            "StateChangeTimestamp": 1_700_000_000_000_000 + stamp,
            "StateChangeTimestampMonotonic": stamp, "FreezerState": "running"}


def service_props(pid: int, result: str = "success", restarts: int = 0, status: int = 0,
                  code: int = 0) -> dict[str, Any]:
    return {"MainPID": pid, "Result": result, "NRestarts": restarts, "ExecMainStatus": status,
            "ExecMainCode": code, "StatusText": ""}


def reading(active: str, sub: str, stamp: int, pid: int = 0, **kw: Any) -> dict[str, Any]:
    """A GetAll("") reply: every interface at once."""
    return {"LoadState": kw.pop("load", "loaded"), **unit_props(active, sub, stamp),
            **service_props(pid, **kw)}


def listing(*names: str, load: str = "loaded", active: str = "active") -> list[UnitListing]:
    return [UnitListing(n, n, LoadState(load), ActiveState(active), SubState("running"), "", 0)
            for n in names]


def started(view: UnitView, pid: int = 100) -> list[WatchEvent]:
    events = view.properties_changed(NAME, service_props(pid))[0]
    events += view.properties_changed(NAME, unit_props("active", "running", 10))[0]
    return events


def test_build_unit_state_ignores_unknown_and_mistyped_values() -> None:
    state = build_unit_state(NAME, {"ActiveState": "active", "MainPID": "12", "Weird": 1,
                                    "Job": (7, "/org/freedesktop/systemd1/job/7")})
    assert state.active_state is ActiveState.ACTIVE
    assert state.main_pid == 0
    assert state.job_id == 7


def test_other_prefixes_are_ignored() -> None:
    view = UnitView("bindrop-")
    assert view.properties_changed("dbus.service", unit_props("active", "running", 1)) == ([],
                                                                                          False)
    assert view.unit_new("dbus.service") is False
    assert view.unit_removed("dbus.service") == []


def test_a_new_unit_appears_with_its_service_values_once_its_unit_state_is_known() -> None:
    view = UnitView("bindrop-")
    assert view.unit_new(NAME) is True  # read it
    events, read = view.properties_changed(NAME, service_props(100))
    assert events == [] and read is False  # the reading is already on its way
    events, _ = view.properties_changed(NAME, unit_props("activating", "start", 5, job=9))
    (event,) = events
    assert isinstance(event, UnitChanged) and event.old is None
    assert event.new.main_pid == 100 and event.new.sub_state is SubState.START
    assert event.new.job_id == 9


def test_a_unit_seen_first_by_a_signal_is_read() -> None:
    view = UnitView("bindrop-")
    _, read = view.properties_changed(NAME, service_props(100))
    assert read is True


def test_repeated_identical_signals_emit_nothing() -> None:
    view = UnitView("bindrop-")
    started(view)
    assert view.properties_changed(NAME, unit_props("active", "running", 10))[0] == []
    assert view.properties_changed(NAME, service_props(100))[0] == []


def test_crash_and_restart_are_delivered_in_order() -> None:
    view = UnitView("bindrop-")
    started(view, pid=100)
    sequence = [
        service_props(0, "signal", 0, 9, 2),
        unit_props("failed", "failed", 20),
        unit_props("activating", "auto-restart", 21),
        service_props(0, "signal", 1, 9, 2),
        service_props(101, "success", 1),
        unit_props("active", "running", 30),
    ]
    seen = []
    for props in sequence:
        seen += view.properties_changed(NAME, props)[0]
    states = [e.new for e in seen if isinstance(e, UnitChanged)]
    assert [(s.active_state, s.sub_state) for s in states][1:3] == [
        ("failed", "failed"), ("activating", "auto-restart")]
    assert states[-1].main_pid == 101 and states[-1].n_restarts == 1
    assert states[0].exec_main_status == 9


def test_a_failed_units_last_state_is_delivered_before_it_is_gone() -> None:
    # CollectMode=inactive-or-failed: the last PropertiesChanged precedes UnitRemoved.
    view = UnitView("bindrop-")
    started(view)
    first = view.properties_changed(NAME, service_props(0, "exit-code", 0, 1, 1))[0]
    second = view.properties_changed(NAME, unit_props("failed", "failed", 20))[0]
    gone = view.unit_removed(NAME)
    assert isinstance(first[0], UnitChanged) and isinstance(second[0], UnitChanged)
    (event,) = gone
    assert isinstance(event, UnitGone)
    assert event.last.active_state is ActiveState.FAILED
    assert event.last.result is UnitResult.EXIT_CODE and event.last.exec_main_status == 1
    assert is_given_up(event.last)
    assert NAME not in view.units


def test_removals_inside_a_reload_window_are_ignored_and_reread_after() -> None:
    view = UnitView("bindrop-")
    started(view)
    assert view.reloading_changed(True) is False
    assert view.unit_removed(NAME) == []
    assert view.unit_new(NAME) is False
    assert view.reloading_changed(False) is True  # re-read now
    events, names = view.listing(listing(NAME))
    assert events == [] and names == [NAME]
    assert view.unit_read(NAME, reading("active", "running", 10, pid=100)) == []
    assert view.units[NAME].active_state is ActiveState.ACTIVE


def test_a_unit_that_really_vanished_during_a_reload_is_gone_after_the_reread() -> None:
    view = UnitView("bindrop-")
    started(view)
    view.reloading_changed(True)
    view.unit_removed(NAME)
    view.reloading_changed(False)
    events, names = view.listing(listing())
    assert names == []
    (event,) = events
    assert isinstance(event, UnitGone) and event.last.name == NAME


def test_a_running_unit_that_lost_its_file_is_not_a_ghost() -> None:
    # After daemon-reload a running unit whose fragment vanished reads LoadState=not-found.
    view = UnitView("bindrop-")
    started(view)
    events = view.unit_read(NAME, reading("active", "running", 10, pid=100, load="not-found"))
    (event,) = events
    assert isinstance(event, UnitChanged) and event.new.load_state is LoadState.NOT_FOUND
    assert NAME in view.units


def test_reading_a_vanished_unit_loads_a_stub_that_is_not_read_again() -> None:
    view = UnitView("bindrop-")
    assert view.unit_new(NAME) is True
    stub = reading("inactive", "dead", 0, load="not-found")
    assert is_ghost(stub)
    assert view.unit_read(NAME, stub) == []
    # systemd announces the stub it loaded for our read, then collects it.
    assert view.unit_new(NAME) is False
    assert view.unit_removed(NAME) == []
    assert NAME not in view.units
    # A real unit of that name later is read again.
    assert view.unit_new(NAME) is True


def test_a_reading_applied_in_order_wins_over_earlier_signals() -> None:
    view = UnitView("bindrop-")
    started(view)
    view.properties_changed(NAME, unit_props("deactivating", "stop-sigterm", 40))
    events = view.unit_read(NAME, reading("inactive", "dead", 41, pid=0))
    (event,) = events
    assert isinstance(event, UnitChanged)
    assert event.new.active_state is ActiveState.INACTIVE


def test_an_older_reading_never_overwrites_a_newer_signal() -> None:
    view = UnitView("bindrop-")
    started(view)
    view.properties_changed(NAME, unit_props("deactivating", "stop-sigterm", 40))
    assert view.unit_read(NAME, reading("active", "running", 10, pid=100)) == []
    assert view.units[NAME].active_state is ActiveState.DEACTIVATING


def test_a_resync_is_silent_and_ends_in_one_resynced() -> None:
    view = UnitView("bindrop-")
    started(view)
    view.begin_resync(forget_reload=True)
    events, names = view.listing(listing("bindrop-y.service"))
    assert events == []  # x is gone, silently: Resynced replaces the view
    assert names == ["bindrop-y.service"]
    # A signal that arrives between the listing and the reading is applied, silently.
    assert view.properties_changed("bindrop-y.service", service_props(7))[0] == []
    assert view.unit_read("bindrop-y.service", reading("active", "running", 3, pid=7)) == []
    resynced = view.end_resync(ResyncReason.RECONNECT)
    assert isinstance(resynced, Resynced)
    assert list(resynced.snapshot) == ["bindrop-y.service"]
    assert resynced.snapshot["bindrop-y.service"].main_pid == 7
    assert resynced.reason is ResyncReason.RECONNECT
    # Afterwards changes are delivered again.
    assert view.properties_changed("bindrop-y.service", service_props(8))[0]


def test_a_new_connection_forgets_an_open_reload_window() -> None:
    view = UnitView("bindrop-")
    view.reloading_changed(True)
    view.begin_resync(forget_reload=True)
    assert view.reloading is False


def test_listing_skips_stubs_and_other_names() -> None:
    view = UnitView("bindrop-")
    rows = listing("bindrop-a.service", "dbus.service")
    rows += listing("bindrop-stub.service", load="not-found", active="inactive")
    _, names = view.listing(rows)
    assert names == ["bindrop-a.service"]


def test_a_failed_read_forgets_the_pending_unit() -> None:
    view = UnitView("bindrop-")
    assert view.unit_new(NAME) is True
    view.read_failed(NAME)
    assert view.is_pending(NAME) is False
    assert view.unit_new(NAME) is True
