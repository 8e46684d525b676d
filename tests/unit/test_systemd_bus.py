"""Bus, jobs and watcher against a scripted fake systemd on a private dbus-daemon.

Real systemd rarely produces these orderings on demand (a JobRemoved before its reply, a reply
that never comes, a signal right behind a snapshot reply), so a fake answers at the real
protocol boundary: a second D-Bus connection owning org.freedesktop.systemd1 that sends
exactly the messages a test scripts, in that order, back to back.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from bindrop.errors import BusUnavailable, JobFailed, SystemdError, UnitExists
from bindrop.systemd import Bus, Manager, ResyncReason, UnitChanged, Watcher, WatchEvent
from bindrop.systemd.paths import MANAGER_PATH, unit_path

MANAGER = "org.freedesktop.systemd1.Manager"
PROPS = "org.freedesktop.DBus.Properties"
UNIT = "bindrop-fake.service"

Script = Callable[[Message], list[Message] | None]


@dataclass(frozen=True)
class Prop:
    name: str
    signature: str
    value: object


class Daemon:
    """A private dbus-daemon of a test's own, that the test may kill and start again."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1",
             f"--address={self.address}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        # The address is printed once the daemon listens.
        if not self.proc.stdout.readline():
            pytest.fail("dbus-daemon did not start")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed")
    daemon = Daemon(f"unix:path={tmp_path / 'bus'}")
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture
def bus_address(daemon: Daemon) -> str:
    return daemon.address


def reply(call: Message, signature: str = "", body: list[Any] | None = None) -> Message:
    return Message.new_method_return(call, signature, body or [])


def manager_signal(member: str, signature: str, body: list[Any]) -> Message:
    return Message.new_signal(MANAGER_PATH, MANAGER, member, signature, body)


def properties_changed(name: str, interface: str, props: dict[str, Variant]) -> Message:
    return Message.new_signal(
        unit_path(name), PROPS, "PropertiesChanged", "sa{sv}as", [interface, props, []]
    )


def job_removed(job_id: int, name: str, result: str = "done") -> Message:
    return manager_signal(
        "JobRemoved", "uoss", [job_id, f"/org/freedesktop/systemd1/job/{job_id}", name, result]
    )


def unit_state(active: str, sub: str, stamp: int, pid: int) -> dict[str, Variant]:
    return {
        "LoadState": Variant("s", "loaded"),
        "ActiveState": Variant("s", active),
        "SubState": Variant("s", sub),
        "StateChangeTimestampMonotonic": Variant("t", stamp),
        "Job": Variant("(uo)", [0, "/"]),
        "MainPID": Variant("u", pid),
    }


class FakeSystemd:
    """Owns org.freedesktop.systemd1 and answers with whatever ``scripts`` says.

    A script gets the call and returns the messages to send, in order (None: never answer).
    """

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.calls: list[str] = []
        self.scripts: dict[str, Script] = {"Subscribe": lambda call: [reply(call)]}
        bus.add_message_handler(self._handle)

    def _handle(self, msg: Message) -> bool | None:
        if msg.message_type is not MessageType.METHOD_CALL or msg.member not in self.scripts:
            return None
        self.calls.append(msg.member)
        for out in self.scripts[msg.member](msg) or []:
            self.bus.send(out)
        return True


@pytest.fixture
async def fake(bus_address: str) -> AsyncIterator[FakeSystemd]:
    raw = await MessageBus(bus_address=bus_address).connect()
    await raw.request_name("org.freedesktop.systemd1")
    yield FakeSystemd(raw)
    raw.disconnect()
    with contextlib.suppress(Exception):  # a test may have killed the daemon under it
        await raw.wait_for_disconnect()  # type: ignore[no-untyped-call]


@pytest.fixture
async def bus(bus_address: str, fake: FakeSystemd) -> AsyncIterator[Bus]:
    async with Bus(bus_address, call_timeout=2.0) as bus:
        yield bus


@pytest.fixture
async def manager(bus: Bus) -> AsyncIterator[Manager]:
    manager = Manager(bus)
    yield manager
    manager.close()


def job_reply(call: Message, job_id: int) -> Message:
    return reply(call, "o", [f"/org/freedesktop/systemd1/job/{job_id}"])


PROPS_OK = [Prop("Type", "s", "exec")]


async def test_connecting_subscribes_to_systemd(bus: Bus, fake: FakeSystemd) -> None:
    assert bus.connected
    assert fake.calls == ["Subscribe"]


async def test_job_removed_right_behind_the_reply_is_not_lost(
    manager: Manager, fake: FakeSystemd
) -> None:
    jobs = iter(range(1, 1000))

    def start(call: Message) -> list[Message]:
        job = next(jobs)
        return [job_reply(call, job), job_removed(job, UNIT)]

    fake.scripts["StartTransientUnit"] = start
    async with asyncio.timeout(10):
        for _ in range(20):
            await manager.start_transient_unit(UNIT, PROPS_OK)


async def test_job_removed_before_the_reply_is_not_lost(
    manager: Manager, fake: FakeSystemd
) -> None:
    fake.scripts["StopUnit"] = lambda call: [job_removed(7, UNIT), job_reply(call, 7)]
    async with asyncio.timeout(10):
        await manager.stop_unit(UNIT)


async def test_a_failed_job_reports_what_systemd_pushed_about_the_unit(
    manager: Manager, fake: FakeSystemd
) -> None:
    # With CollectMode=inactive-or-failed the unit is gone before anyone could read it.
    fake.scripts["StartTransientUnit"] = lambda call: [
        job_reply(call, 3),
        properties_changed(UNIT, "org.freedesktop.systemd1.Service", {
            "Result": Variant("s", "exit-code"),
            "ExecMainCode": Variant("i", 1),
            "ExecMainStatus": Variant("i", 203),
        }),
        job_removed(3, UNIT, "failed"),
    ]
    with pytest.raises(JobFailed) as caught:
        await manager.start_transient_unit(UNIT, PROPS_OK)
    assert caught.value.result == "failed"
    assert "203/EXEC" in caught.value.message


async def test_an_error_reply_is_translated(manager: Manager, fake: FakeSystemd) -> None:
    fake.scripts["StartTransientUnit"] = lambda call: [
        Message.new_error(call, "org.freedesktop.systemd1.UnitExists", "Unit exists.")
    ]
    with pytest.raises(UnitExists):
        await manager.start_transient_unit(UNIT, PROPS_OK)


async def test_a_bad_property_is_refused_before_anything_is_sent(
    manager: Manager, fake: FakeSystemd
) -> None:
    from bindrop.errors import InvalidInput

    with pytest.raises(InvalidInput, match="PrivateTmp"):
        await manager.start_transient_unit(UNIT, [Prop("PrivateTmp", "b", 1)])
    assert "StartTransientUnit" not in fake.calls


async def test_a_call_that_is_never_answered_times_out(bus: Bus, fake: FakeSystemd) -> None:
    fake.scripts["GetUnit"] = lambda call: None
    with pytest.raises(SystemdError, match="did not answer"):
        await bus.call("GetUnit", "s", [UNIT], timeout=0.2)
    # The connection is still fine.
    fake.scripts["GetUnit"] = lambda call: [reply(call, "o", [unit_path(UNIT)])]
    assert await bus.call("GetUnit", "s", [UNIT]) == [unit_path(UNIT)]


async def test_calls_in_flight_are_bounded(bus_address: str, fake: FakeSystemd) -> None:
    in_flight = 0
    most = 0
    loop = asyncio.get_running_loop()

    def slow(call: Message) -> list[Message]:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)

        def answer() -> None:
            nonlocal in_flight
            in_flight -= 1
            fake.bus.send(reply(call, "o", [unit_path(UNIT)]))

        loop.call_later(0.01, answer)
        return []

    fake.scripts["GetUnit"] = slow
    async with Bus(bus_address, max_in_flight=8) as bus:
        await asyncio.gather(*(bus.call("GetUnit", "s", [UNIT]) for _ in range(100)))
    assert 1 < most <= 8


async def test_a_snapshot_reply_is_applied_before_the_signal_behind_it(
    bus: Bus, fake: FakeSystemd
) -> None:
    listing = [[UNIT, "", "loaded", "active", "running", "", unit_path(UNIT), 0, "", "/"]]
    fake.scripts["ListUnitsByPatterns"] = lambda call: [reply(call, "a(ssssssouso)", [listing])]
    # The reading says "running"; a newer PropertiesChanged right behind it says "stopping".
    fake.scripts["GetAll"] = lambda call: [
        reply(call, "a{sv}", [unit_state("active", "running", 10, 42)]),
        properties_changed(UNIT, "org.freedesktop.systemd1.Unit", {
            "ActiveState": Variant("s", "deactivating"),
            "SubState": Variant("s", "stop-sigterm"),
            "StateChangeTimestampMonotonic": Variant("t", 20),
        }),
    ]
    seen: list[WatchEvent] = []
    async with Watcher(bus) as watcher:
        watcher.subscribe(seen.append)
        state = watcher.get(UNIT)
        assert state is not None
        # The signal may be dispatched before start() returns; either way it wins.
        await bus.call("ListUnitsByPatterns", "asas", [[], ["x"]])
        state = watcher.get(UNIT)
        assert state is not None and state.active_state == "deactivating"
        assert state.main_pid == 42


async def test_a_watcher_delivers_a_new_unit_read_after_unit_new(
    bus: Bus, fake: FakeSystemd
) -> None:
    fake.scripts["ListUnitsByPatterns"] = lambda call: [reply(call, "a(ssssssouso)", [[]])]
    fake.scripts["GetAll"] = lambda call: [
        reply(call, "a{sv}", [unit_state("inactive", "dead", 5, 0)])
    ]
    async with Watcher(bus) as watcher, watcher.events() as events:
        fake.bus.send(manager_signal("UnitNew", "so", [UNIT, unit_path(UNIT)]))
        async with asyncio.timeout(5):
            async for event in events:
                if isinstance(event, UnitChanged):
                    assert event.old is None and event.name == UNIT
                    break


async def test_an_unreachable_bus_is_bus_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BusUnavailable, match="system bus"):
        await Bus.connect(f"unix:path={tmp_path}/nothing-here")


async def test_calls_after_close_are_bus_unavailable(bus: Bus) -> None:
    await bus.close()
    with pytest.raises(BusUnavailable):
        await bus.call("GetUnit", "s", [UNIT])


async def test_losing_the_bus_fails_job_waits_and_the_bus_reconnects(
    daemon: Daemon, bus: Bus, manager: Manager, fake: FakeSystemd
) -> None:
    # systemd accepts the stop job, then the bus goes away before the job ends.
    fake.scripts["StopUnit"] = lambda call: [job_reply(call, 5)]
    reasons: list[ResyncReason] = []
    bus.add_ready_listener(reasons.append)
    lost: list[str] = []
    bus.add_lost_listener(lambda error: lost.append(error.message))
    stopping = asyncio.create_task(manager.stop_unit(UNIT))
    async with asyncio.timeout(5):
        while "StopUnit" not in fake.calls:
            await asyncio.sleep(0.01)

    await asyncio.to_thread(daemon.stop)
    with pytest.raises(BusUnavailable, match="may still be running"):
        async with asyncio.timeout(5):
            await stopping
    assert lost and not bus.connected

    await asyncio.to_thread(daemon.start)
    async with asyncio.timeout(10):
        while not reasons:
            await asyncio.sleep(0.05)
    assert reasons == [ResyncReason.RECONNECT]
    assert bus.connected
    # Nobody owns org.freedesktop.systemd1 on the new bus: calls say so, as BusUnavailable.
    with pytest.raises(BusUnavailable, match="not on the bus"):  # activation fails here
        await bus.call("GetUnit", "s", [UNIT])


async def test_a_signal_sent_to_us_by_anyone_but_systemd_is_not_believed(
    bus_address: str, bus: Bus, manager: Manager, fake: FakeSystemd
) -> None:
    fake.scripts["StopUnit"] = lambda call: [job_reply(call, 9)]
    stopping = asyncio.create_task(manager.stop_unit(UNIT))
    async with asyncio.timeout(5):
        while "StopUnit" not in fake.calls:
            await asyncio.sleep(0.01)
    # A directed signal bypasses match rules; any local user could send one.
    impostor = await MessageBus(bus_address=bus_address).connect()
    forged = job_removed(9, UNIT, "done")
    forged.destination = bus.unique_name
    await impostor.send(forged)
    impostor.disconnect()
    await impostor.wait_for_disconnect()  # type: ignore[no-untyped-call]
    fake.bus.send(job_removed(9, UNIT, "failed"))
    with pytest.raises(JobFailed):
        async with asyncio.timeout(5):
            await stopping
