"""bindrop.systemd against a real private systemd: calls, job results, and the watcher.

Every check of a unit's state goes through the watcher's event stream, never by polling.
Hang timeouts are generous; nothing asserts on wall-clock time.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest

from bindrop.errors import JobFailed, NotFound, UnitExists
from bindrop.machine import Machine
from bindrop.systemd import (
    ActiveState,
    Bus,
    EventStream,
    Manager,
    Resynced,
    ResyncReason,
    SubState,
    UnitChanged,
    UnitGone,
    UnitState,
    Watcher,
    WatchEvent,
    is_given_up,
)

pytestmark = pytest.mark.integration

HANG = 30  # seconds before a wait is a hang, not a slow machine


@dataclass(frozen=True)
class Prop:
    name: str
    signature: str
    value: object


def exec_start(*argv: str) -> Prop:
    return Prop("ExecStart", "a(sasb)", [[argv[0], list(argv), False]])


def sleeper(*extra: Prop) -> list[Prop]:
    """A long-running service that systemd starts with Type=exec and forgets when it ends."""
    return [
        exec_start("/bin/sleep", "300"),
        Prop("Type", "s", "exec"),
        Prop("CollectMode", "s", "inactive-or-failed"),
        *extra,
    ]


RESTART_ON_FAILURE = (
    Prop("Restart", "s", "on-failure"),
    Prop("RestartUSec", "t", 100_000),
)


async def inside(machine: Machine, *argv: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(machine.exec, *argv)


async def show(machine: Machine, unit: str, prop: str) -> str:
    out = await inside(machine, "systemctl", "show", "-p", prop, "--value", unit)
    return out.stdout.strip()


async def next_event(
    events: EventStream, predicate: Callable[[WatchEvent], bool]
) -> WatchEvent:
    async with asyncio.timeout(HANG):
        async for event in events:
            if predicate(event):
                return event
    raise AssertionError("the event stream ended")


def changed_to(
    name: str, check: Callable[[UnitState], bool]
) -> Callable[[WatchEvent], bool]:
    return lambda e: isinstance(e, UnitChanged) and e.name == name and check(e.new)


def gone(name: str) -> Callable[[WatchEvent], bool]:
    return lambda e: isinstance(e, UnitGone) and e.name == name


def running(state: UnitState) -> bool:
    return state.active_state is ActiveState.ACTIVE and state.main_pid > 0


async def start_running(manager: Manager, events: EventStream, name: str,
                        *props: Prop) -> UnitChanged:
    """Start the sleeper ``name`` (with ``props``); the event that says it runs."""
    await manager.start_transient_unit(name, sleeper(*props))
    event = await next_event(events, changed_to(name, running))
    assert isinstance(event, UnitChanged)
    return event


async def stop_until_gone(manager: Manager, events: EventStream, name: str) -> None:
    await manager.stop_unit(name)
    await next_event(events, gone(name))


@pytest.fixture
def unit_name(machine: Machine) -> Iterator[Callable[[str], str]]:
    """Fresh unit names; whatever a failing test left loaded is stopped and reset after it."""
    names: list[str] = []

    def make(label: str) -> str:
        name = f"bindrop-test-{label}-{secrets.token_hex(3)}.service"
        names.append(name)
        return name

    yield make
    for name in names:
        machine.exec("systemctl", "stop", name, check=False)
        machine.exec("systemctl", "reset-failed", name, check=False)


@pytest.fixture
async def bus(machine: Machine) -> AsyncIterator[Bus]:
    async with Bus(machine.bus_address) as bus:
        yield bus


@pytest.fixture
async def manager(bus: Bus) -> AsyncIterator[Manager]:
    manager = Manager(bus)
    yield manager
    manager.close()


@pytest.fixture
async def watcher(bus: Bus) -> AsyncIterator[Watcher]:
    async with Watcher(bus) as watcher:
        yield watcher


@pytest.fixture
async def events(watcher: Watcher) -> AsyncIterator[EventStream]:
    async with watcher.events() as stream:
        yield stream


async def test_transient_unit_becomes_active(
    machine: Machine, manager: Manager, events: EventStream, unit_name: Callable[[str], str]
) -> None:
    name = unit_name("active")
    event = await start_running(manager, events, name)
    assert event.new.sub_state is SubState.RUNNING
    assert await show(machine, name, "MainPID") == str(event.new.main_pid)
    await stop_until_gone(manager, events, name)


async def test_stop_is_seen_and_a_collected_unit_is_gone(
    machine: Machine, manager: Manager, events: EventStream, unit_name: Callable[[str], str]
) -> None:
    name = unit_name("stop")
    await start_running(manager, events, name)
    await manager.stop_unit(name)
    await next_event(
        events, changed_to(name, lambda s: s.active_state is ActiveState.DEACTIVATING)
    )
    event = await next_event(events, gone(name))
    assert isinstance(event, UnitGone)
    assert event.last.active_state is ActiveState.INACTIVE
    assert event.last.main_pid == 0
    assert await show(machine, name, "LoadState") == "not-found"


async def test_sigkill_of_the_main_pid_is_seen_and_systemd_restarts_it(
    machine: Machine,
    manager: Manager,
    watcher: Watcher,
    events: EventStream,
    unit_name: Callable[[str], str],
) -> None:
    name = unit_name("kill")
    first = await start_running(manager, events, name, *RESTART_ON_FAILURE)
    old_pid = first.new.main_pid

    await inside(machine, "kill", "-9", str(old_pid))

    crashed = await next_event(
        events,
        changed_to(name, lambda s: s.active_state is ActiveState.FAILED
                   or s.sub_state is SubState.AUTO_RESTART),
    )
    assert isinstance(crashed, UnitChanged)
    assert crashed.new.exec_main_code == 2 and crashed.new.exec_main_status == 9
    again = await next_event(
        events, changed_to(name, lambda s: running(s) and s.main_pid != old_pid)
    )
    assert isinstance(again, UnitChanged)
    assert again.new.n_restarts >= 1
    state = watcher.get(name)
    assert state is not None and not is_given_up(state)
    assert await show(machine, name, "NRestarts") == str(again.new.n_restarts)

    await stop_until_gone(manager, events, name)


async def test_manager_kill_unit_triggers_restart_on_failure(
    manager: Manager, events: EventStream, unit_name: Callable[[str], str]
) -> None:
    name = unit_name("killunit")
    first = await start_running(manager, events, name, *RESTART_ON_FAILURE)
    await manager.kill_unit(name, 9)
    await next_event(
        events, changed_to(name, lambda s: running(s) and s.main_pid != first.new.main_pid)
    )
    await stop_until_gone(manager, events, name)


async def test_a_binary_that_exits_at_once_hits_the_start_limit_and_is_given_up(
    machine: Machine,
    manager: Manager,
    watcher: Watcher,
    events: EventStream,
    unit_name: Callable[[str], str],
) -> None:
    name = unit_name("false")
    props = [
        exec_start("/bin/false"),
        Prop("Type", "s", "exec"),
        *RESTART_ON_FAILURE,
        Prop("StartLimitBurst", "u", 5),
        Prop("StartLimitIntervalUSec", "t", 10_000_000),
    ]
    # The first run may exit before or after the start job counts it as started.
    try:
        await manager.start_transient_unit(name, props)
    except JobFailed as exc:
        assert exc.unit == name

    def latest_given_up(event: WatchEvent) -> bool:
        # A crash reads "failed" then "auto-restart" in the same millisecond: judge the
        # watcher's latest state, after the restarts systemd allows.
        state = watcher.get(name)
        return (
            isinstance(event, UnitChanged)
            and event.name == name
            and state is not None
            and state.n_restarts >= 4
            and is_given_up(state)
        )

    await next_event(events, latest_given_up)
    # Given up means no restart comes any more; a restart would be queued within RestartUSec.
    await asyncio.sleep(0.5)
    state = watcher.get(name)
    assert state is not None and is_given_up(state)
    assert state.result == "exit-code"  # 252 keeps the old reason, not start-limit-hit
    assert await show(machine, name, "ActiveState") == "failed"

    await manager.reset_failed_unit(name)
    await next_event(events, gone(name))


async def test_a_missing_binary_fails_the_start_job(
    manager: Manager, events: EventStream, unit_name: Callable[[str], str]
) -> None:
    name = unit_name("missing")
    with pytest.raises(JobFailed) as caught:
        await manager.start_transient_unit(
            name,
            [exec_start("/nonexistent/bin/app"), Prop("Type", "s", "exec"),
             Prop("CollectMode", "s", "inactive-or-failed")],
        )
    error = caught.value
    assert error.unit == name and error.result == "failed"
    assert "203/EXEC" in error.message and "executable" in error.message
    assert f"journalctl -u {name}" in error.message
    # The failure is delivered before the removal (CollectMode=inactive-or-failed).
    event = await next_event(events, gone(name))
    assert isinstance(event, UnitGone)
    assert event.last.active_state is ActiveState.FAILED
    assert event.last.exec_main_status == 203


async def test_a_duplicate_name_is_unit_exists(
    manager: Manager, events: EventStream, unit_name: Callable[[str], str]
) -> None:
    name = unit_name("dup")
    await manager.start_transient_unit(name, sleeper())
    with pytest.raises(UnitExists):
        await manager.start_transient_unit(name, sleeper())
    await stop_until_gone(manager, events, name)


async def test_a_snapshot_after_subscribe_sees_units_started_before_the_watcher(
    bus: Bus, manager: Manager, unit_name: Callable[[str], str]
) -> None:
    name = unit_name("before")
    await manager.start_transient_unit(name, sleeper())
    async with Watcher(bus) as late, late.events() as events:
        state = late.get(name)
        assert state is not None and running(state)
        first = await next_event(events, lambda e: True)
        assert isinstance(first, Resynced) and name in first.snapshot
        assert first.reason is ResyncReason.START
        await stop_until_gone(manager, events, name)


async def test_the_watcher_survives_daemon_reload(
    machine: Machine,
    manager: Manager,
    watcher: Watcher,
    events: EventStream,
    unit_name: Callable[[str], str],
) -> None:
    name = unit_name("reload")
    started = await start_running(manager, events, name)

    during: list[WatchEvent] = []
    unsubscribe = watcher.subscribe(during.append)
    await inside(machine, "systemctl", "daemon-reload")
    # Any reply comes after Reloading(false) on the wire, so the re-read has been asked for.
    await manager.list_units()
    await watcher.wait_synced()
    unsubscribe()

    assert not [e for e in during if isinstance(e, UnitGone | Resynced)], during
    state = watcher.get(name)
    assert state is not None and state.main_pid == started.new.main_pid
    assert state.active_state is ActiveState.ACTIVE
    await stop_until_gone(manager, events, name)


async def test_the_watcher_resyncs_after_daemon_reexec(
    machine: Machine,
    manager: Manager,
    events: EventStream,
    unit_name: Callable[[str], str],
) -> None:
    name = unit_name("reexec")
    started = await start_running(manager, events, name)

    await inside(machine, "systemctl", "daemon-reexec")
    event = await next_event(events, lambda e: isinstance(e, Resynced | UnitGone))
    assert isinstance(event, Resynced), event
    assert event.reason is ResyncReason.SYSTEMD_RESTART
    assert event.snapshot[name].main_pid == started.new.main_pid

    await stop_until_gone(manager, events, name)


async def test_the_bus_reconnects_and_the_watcher_resyncs_after_dbus_restarts(
    machine: Machine,
    bus: Bus,
    manager: Manager,
    events: EventStream,
    unit_name: Callable[[str], str],
) -> None:
    name = unit_name("dbus")
    started = await start_running(manager, events, name)

    await inside(machine, "systemctl", "restart", "dbus.service")
    event = await next_event(events, lambda e: isinstance(e, Resynced))
    assert isinstance(event, Resynced)
    assert event.reason in (ResyncReason.RECONNECT, ResyncReason.SYSTEMD_RESTART)
    assert event.snapshot[name].main_pid == started.new.main_pid
    assert bus.connected

    # systemd may join the new bus a moment after we do; the stop waits for it.
    async with asyncio.timeout(HANG):
        while True:
            try:
                await manager.stop_unit(name)
                break
            except Exception:
                await asyncio.sleep(0.2)
    await next_event(events, gone(name))


async def test_instant_jobs_are_never_lost(
    manager: Manager, events: EventStream, unit_name: Callable[[str], str]
) -> None:
    # Starting an active unit is a job that ends at once: its JobRemoved shares a socket read
    # with the reply (systemd-lab.md: 18 of 20 lost without ordered matching).
    name = unit_name("instant")
    await manager.start_transient_unit(name, sleeper())
    async with asyncio.timeout(HANG):
        for _ in range(20):
            await manager.start_unit(name)
    await stop_until_gone(manager, events, name)


async def test_properties_and_metrics_are_read_on_demand(
    machine: Machine, manager: Manager, events: EventStream, unit_name: Callable[[str], str]
) -> None:
    name = unit_name("props")
    await start_running(manager, events, name, Prop("MemoryMax", "t", 64 * 1024 * 1024))

    props = await manager.get_unit_properties(name)
    assert props["MemoryMax"] == 64 * 1024 * 1024
    assert await show(machine, name, "MemoryMax") == str(64 * 1024 * 1024)
    metrics = await manager.read_unit_metrics(name)
    assert metrics.memory_current is not None and metrics.memory_current > 0
    assert metrics.tasks_current is not None and metrics.tasks_current >= 1
    assert metrics.cpu_usage_nsec is None or metrics.cpu_usage_nsec >= 0

    listed = await manager.list_units("bindrop-test-props-*")
    assert [u.name for u in listed] == [name]
    assert listed[0].active_state is ActiveState.ACTIVE

    await manager.restart_unit(name)
    await stop_until_gone(manager, events, name)
    with pytest.raises(NotFound):
        await manager.get_unit_properties(name)
