"""The state store: (old, new) only on change, derived app views, give-up vs restart."""

from __future__ import annotations

import asyncio

from bindrop.hub.state import (
    AppRunState,
    AppStateChanged,
    Change,
    Route,
    StateStore,
    UnitStateChanged,
)
from bindrop.systemd.events import Resynced, ResyncReason, UnitChanged, UnitGone
from bindrop.systemd.types import ActiveState, SubState, UnitResult, UnitState

UNIT = "bindrop-app-blog-3.service"
ROUTE = Route(UNIT, "3", 20001)


def state(active: str = "active", sub: str = "running", **kw: object) -> UnitState:
    return UnitState(name=str(kw.pop("name", UNIT)), active_state=ActiveState(active),
                     sub_state=SubState(sub), **kw)  # type: ignore[arg-type]


def recorder(store: StateStore) -> list[Change]:
    seen: list[Change] = []
    store.subscribe(seen.append)
    return seen


async def test_a_change_is_emitted_only_when_something_changed() -> None:
    store = StateStore()
    seen = recorder(store)
    running = state(main_pid=10)
    store.apply(UnitChanged(None, running))
    count = len(seen)
    store.apply(UnitChanged(running, running))
    assert len(seen) == count
    assert isinstance(seen[0], UnitStateChanged) and seen[0].new == running


async def test_unsubscribe_stops_delivery() -> None:
    store = StateStore()
    seen: list[Change] = []
    unsubscribe = store.subscribe(seen.append)
    unsubscribe()
    store.apply(UnitChanged(None, state()))
    assert seen == []


async def test_routed_active_unit_makes_the_app_running() -> None:
    store = StateStore()
    store.apply(UnitChanged(None, state(main_pid=42, active_enter_timestamp=5)))
    assert store.app("blog").state == AppRunState.STARTING  # type: ignore[union-attr]
    store.set_route("blog", ROUTE)
    view = store.app("blog")
    assert view is not None
    assert (view.state, view.main_pid, view.live_release) == (AppRunState.RUNNING, 42, "3")


async def test_a_crash_flash_of_failed_is_restarting_not_given_up() -> None:
    store = StateStore()
    store.apply(UnitChanged(None, state()))
    store.set_route("blog", ROUTE)
    apps = [c for c in recorder(store) if isinstance(c, AppStateChanged)]
    store.apply(UnitChanged(None, state("failed", "failed", exec_main_code=2,
                                        exec_main_status=9)))
    store.apply(UnitChanged(None, state("activating", "auto-restart", n_restarts=1)))
    view = store.app("blog")
    assert view is not None and view.state == AppRunState.RESTARTING
    assert all(c.new is None or c.new.state != AppRunState.CRASH_LOOPING for c in apps)


async def test_routed_unit_collected_while_failed_is_reported_as_given_up() -> None:
    store = StateStore()
    store.apply(UnitChanged(None, state()))
    store.set_route("blog", ROUTE)
    last = state("failed", "failed", result=UnitResult.EXIT_CODE, exec_main_code=1,
                 exec_main_status=3, n_restarts=5)
    store.apply(UnitChanged(None, last))
    store.apply(UnitGone(last))
    view = store.app("blog")
    assert view is not None
    assert view.state == AppRunState.CRASH_LOOPING
    assert view.problem == "exited with status 3 after 5 restarts"
    assert view.route is None


async def test_a_stopped_unit_leaves_a_stopped_app_with_no_view() -> None:
    store = StateStore()
    store.apply(UnitChanged(None, state()))
    store.set_route("blog", ROUTE)
    store.apply(UnitGone(state("inactive", "dead")))
    assert store.app("blog") is None
    assert store.snapshot().units == {}


async def test_resync_drops_units_missing_from_the_snapshot() -> None:
    store = StateStore()
    other = "bindrop-app-wiki-1.service"
    store.apply(UnitChanged(None, state()))
    store.apply(UnitChanged(None, state(name=other)))
    store.apply(Resynced({other: state(name=other)}, ResyncReason.RECONNECT))
    assert set(store.snapshot().units) == {other}
    assert store.app("blog") is None


async def test_a_second_unit_up_beside_the_routed_one_is_a_deploy() -> None:
    store = StateStore()
    store.apply(UnitChanged(None, state()))
    store.set_route("blog", ROUTE)
    store.apply(UnitChanged(None, state("activating", "start",
                                        name="bindrop-app-blog-4.service")))
    view = store.app("blog")
    assert view is not None and view.deploying and view.state == AppRunState.RUNNING


async def test_failed_readiness_is_shown_until_a_route_is_set() -> None:
    store = StateStore()
    store.set_problem("blog", AppRunState.FAILED_READINESS, "GET /up answered 500")
    view = store.app("blog")
    assert view is not None and view.state == AppRunState.FAILED_READINESS
    store.apply(UnitChanged(None, state()))
    store.set_route("blog", ROUTE)
    assert store.app("blog").problem is None  # type: ignore[union-attr]


async def test_changed_wakes_a_waiter() -> None:
    store = StateStore()
    waiter = asyncio.create_task(store.changed())
    await asyncio.sleep(0)
    store.apply(UnitChanged(None, state()))
    await asyncio.wait_for(waiter, 1)


async def test_non_app_units_are_tracked_without_an_app_view() -> None:
    store = StateStore()
    store.apply(UnitChanged(None, state(name="bindrop.service")))
    assert "bindrop.service" in store.snapshot().units
    assert store.snapshot().apps == {}


async def test_a_listener_reads_the_app_units_as_they_are_after_the_change() -> None:
    store = StateStore()
    seen: list[list[str]] = []

    def listener(change: Change) -> None:
        if isinstance(change, UnitStateChanged):
            seen.append([u.name for u in store.units_of("blog")])

    store.subscribe(listener)
    store.apply(UnitChanged(None, state()))
    store.apply(UnitGone(state("inactive", "dead")))
    assert seen == [[UNIT], []]
