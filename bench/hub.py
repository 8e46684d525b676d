"""Benchmark of the hub with many apps on a private machine (issue 3). Not a test.

Run as root from the repository root (about 30 s on 2 cores; bounded well under 5 minutes):

    python bench/hub.py              # 200 apps
    python bench/hub.py --apps 20    # a quick smoke run
    python bench/hub.py --sleeper hello   # apps that start slowly (Python), ~1.5 min

It boots its own private machine (``bench-<pid>``), keeps bindrop's files under
``/srv/bindrop-bench-<pid>``, and deploys N apps (16 at a time), each a tiny sleeper that
listens on 127.0.0.1:$PORT so the default TCP readiness check passes: a C program compiled
here with ``cc`` (examples/hello/hello.py when there is no compiler). Then a *fresh* hub, in a
child process of its own so that its RSS is the hub's and nothing else's, measures:

1. attach: ``Hub.start()`` (connect, subscribe, snapshot, reconcile) against N running units,
   checked: every app adopted (RUNNING, with a route) and every MainPID and NRestarts as
   ``systemctl show`` reported them before the hub started (no unit restarted);
2. RSS of that hub process right after attach (psutil), and of the interpreter with its
   imports before the ``Hub`` existed;
3. restart-all: ``hub.submit(app, Restart())`` for every app at once, gathered: zero errors,
   zero bus connections lost (``Bus.add_lost_listener``), each app running on its new unit
   and the old one gone. Also shown: CPU seconds of the hub, systemd and dbus-daemon, and how
   late a 5 ms sleep wakes up in the hub's event loop meanwhile;
4. state-change latency: units are SIGKILLed one by one (``Manager.kill_unit``, --kill-gap
   apart); for every unit state change that follows (failed, auto-restart, dead, activating,
   active) the latency is a state-store subscriber's ``time.time()`` at receipt minus the
   change's ``StateChangeTimestamp`` (systemd's CLOCK_REALTIME: the same clock). A bare
   dbus-fast client in a process of its own (``--listen``, no bindrop) records the same
   signals, which splits each latency into systemd + D-Bus and the hub's own share.

Everything it started is stopped through the hub, then the machine goes down and is purged,
also after an error or SIGTERM. Exits 0 when every target is met, 1 when one is missed, 2 when
the run itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # runnable from a checkout without installing bindrop
    sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
from benchkit import HELLO, compile_c, exit_on_signals, say  # noqa: E402
from dbus_fast import BusType, Message, MessageType  # noqa: E402
from dbus_fast.aio import MessageBus  # noqa: E402

from bindrop.hub.commands import Command, Deploy, Restart, Stop  # noqa: E402
from bindrop.hub.hub import Hub  # noqa: E402
from bindrop.hub.logs import JournalReader  # noqa: E402
from bindrop.hub.plan import Adopt  # noqa: E402
from bindrop.hub.state import AppRunState, Change, UnitStateChanged  # noqa: E402
from bindrop.machine import Machine  # noqa: E402
from bindrop.settings import Settings  # noqa: E402
from bindrop.store import AppConfig, BlobStore, Store  # noqa: E402
from bindrop.systemd.bus import (  # noqa: E402
    DBUS,
    DBUS_PATH,
    MANAGER_IFACE,
    SYSTEMD,
    UNIT_IFACE,
)
from bindrop.systemd.events import ResyncReason  # noqa: E402
from bindrop.systemd.paths import MANAGER_PATH, UNIT_PATH_PREFIX, unit_path  # noqa: E402

REFERENCE_MATCH = ("type='signal',interface='org.freedesktop.DBus.Properties',"
                   "member='PropertiesChanged',"
                   f"path_namespace='{UNIT_PATH_PREFIX.rstrip('/')}'")

TARGET_ATTACH_S = 5.0
TARGET_RSS_MIB = 80.0
TARGET_P99_MS = 20.0

# Guards, not expectations: 200 apps take about 30 s in all.
ATTACH_TIMEOUT = 60.0
DEPLOY_TIMEOUT = 120.0
RESTART_TIMEOUT = 90.0
KILL_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
CHILD_TIMEOUT = 240.0
# A unit may start 5 times in 10 s (StartLimitBurst): never kill one more often than this.
KILL_SPACING_S = 2.5

SLEEPER_C = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; _exit(0); }

int main(void) {
    const char *port = getenv("PORT");
    struct sigaction sa;
    struct sockaddr_in addr;
    int one = 1, fd;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    if (port == NULL) return 2;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 3;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) return 4;
    if (listen(fd, 64) < 0) return 5;
    for (;;) {
        int c = accept(fd, NULL, NULL);  /* readiness probes connect and go */
        if (c >= 0) close(c);
    }
}
"""

# -- what the child reports ----------------------------------------------------------------

@dataclass
class Latency:
    samples_ms: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile; NaN without samples."""
        if not self.samples_ms:
            return math.nan
        ordered = sorted(self.samples_ms)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[rank - 1]


@dataclass
class ChildReport:
    attach_s: float = math.nan
    attach_problems: list[str] = field(default_factory=list)
    rss_baseline_mib: float = math.nan  # interpreter + imports, before the Hub exists
    rss_attach_mib: float = math.nan
    rss_after_restart_mib: float = math.nan
    restart_s: float = math.nan
    restart_errors: list[str] = field(default_factory=list)
    restart_problems: list[str] = field(default_factory=list)
    restart_cpu_s: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds
    restart_loop_lag: list[float] = field(default_factory=list)  # ms: p50, p99, max, its CPU
    bus_lost: int = 0
    bus_reconnected: int = 0
    bus_connected_after: bool = False
    restart_load: list[float] = field(default_factory=list)  # ms, hub subscriber
    restart_load_ref: list[float] = field(default_factory=list)  # ms, bare D-Bus client
    restart_load_share: list[float] = field(default_factory=list)  # ms, hub minus bare client
    kills: int = 0
    latency: list[float] = field(default_factory=list)
    latency_ref: list[float] = field(default_factory=list)
    latency_share: list[float] = field(default_factory=list)
    latency_first: list[float] = field(default_factory=list)  # the change a kill caused
    by_transition: dict[str, list[float]] = field(default_factory=dict)
    latency_problems: list[str] = field(default_factory=list)
    stop_s: float = math.nan
    stop_errors: list[str] = field(default_factory=list)
    stopped_all: bool = False


@dataclass(frozen=True)
class ChildConfig:
    root: str
    bus_address: str
    machine: str
    machines_dir: str
    apps: list[str]
    expected: dict[str, list[int]]  # unit -> [MainPID, NRestarts], from systemctl show
    kills: int
    kill_gap: float
    concurrency: int


# -- helpers shared by both processes --------------------------------------------------------

def rss_mib() -> float:
    return float(psutil.Process().memory_info().rss) / (1 << 20)


def app_names(n: int) -> list[str]:
    return [f"bench{i:04d}" for i in range(n)]


async def call_all(hub: Hub, apps: Sequence[str], command: Callable[[], Command],
                   limit: int, timeout: float) -> tuple[float, list[str]]:
    """Run ``command`` on every app, at most ``limit`` at a time. Returns (seconds, errors)."""
    slots = asyncio.Semaphore(limit)
    errors: list[str] = []

    async def one(app: str) -> None:
        async with slots:
            try:
                await hub.call(app, command())
            except Exception as exc:  # counted and shown, whatever it is
                errors.append(f"{app}: {type(exc).__name__}: {exc}")

    start = time.perf_counter()
    async with asyncio.timeout(timeout):
        await asyncio.gather(*(one(a) for a in apps))
    return time.perf_counter() - start, errors


async def wait_until(hub: Hub, predicate: Callable[[], bool], timeout: float) -> bool:
    """Wait on the state store's change stream (no polling) until ``predicate`` holds."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while not predicate():
                await hub.state.changed()
            return True
    return predicate()


@contextlib.contextmanager
def opened_store(settings: Settings) -> Iterator[tuple[Store, BlobStore]]:
    with Store.open(settings) as store:
        yield store, BlobStore.open(settings)


# -- the child: a fresh hub, measured --------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    """One unit state change as a subscriber saw it."""

    unit: str
    stamp: int  # StateChangeTimestamp, usec of CLOCK_REALTIME
    received: float  # time.time() at the subscriber
    transition: str  # "active/running->failed/failed"

    @property
    def ms(self) -> float:
        return (self.received * 1e6 - self.stamp) / 1000


class ChangeClock:
    """A state-store subscriber timing unit state changes against systemd's timestamps."""

    def __init__(self, units: set[str] | None = None) -> None:
        self.units = units  # None: every unit
        self.samples: list[Sample] = []
        self.first: dict[str, float] = {}  # the first change of a unit since arm()
        self._armed: dict[str, asyncio.Event] = {}

    def arm(self, unit: str) -> asyncio.Event:
        self.first.pop(unit, None)
        event = self._armed[unit] = asyncio.Event()
        return event

    def __call__(self, change: Change) -> None:
        received = time.time()
        if not isinstance(change, UnitStateChanged) or change.old is None or change.new is None:
            return  # a unit's first reading or its removal carries no new state change
        old, new = change.old, change.new
        if new.state_change_timestamp <= old.state_change_timestamp:
            return  # a property without a state change (MainPID, a job)
        if self.units is not None and new.name not in self.units:
            return
        sample = Sample(new.name, new.state_change_timestamp, received,
                        f"{old.active_state}/{old.sub_state}->{new.active_state}/{new.sub_state}")
        self.samples.append(sample)
        armed = self._armed.pop(new.name, None)
        if armed is not None:
            self.first[new.name] = sample.ms
            armed.set()


class ReferenceListener:
    """A bare dbus-fast client in its own process (``--listen``), no bindrop in it: when it
    saw each state change tells systemd's and D-Bus's share of the latency from the hub's."""

    def __init__(self, bus_address: str) -> None:
        self.bus_address = bus_address
        self._proc: asyncio.subprocess.Process | None = None
        self.seen: dict[tuple[str, int], float] = {}  # (object path, stamp) -> received

    async def __aenter__(self) -> ReferenceListener:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--listen", self.bus_address,
            stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
        assert self._proc.stdout is not None
        try:
            async with asyncio.timeout(10):
                line = await self._proc.stdout.readline()
            if line.strip() != b"ready":
                raise RuntimeError("the reference listener did not start")
        except BaseException:
            self._proc.kill()
            await self._proc.wait()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.stdout is None:
            return
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            out = await proc.stdout.read()
            await proc.wait()
        for line in out.decode().splitlines():
            received, path, stamp = line.split()
            self.seen.setdefault((path, int(stamp)), float(received))

    def latencies(self, samples: Sequence[Sample]) -> list[float]:
        """The listener's latency for each of ``samples`` it saw too."""
        found = (self.seen.get((unit_path(s.unit), s.stamp)) for s in samples)
        return [(got * 1e6 - s.stamp) / 1000
                for s, got in zip(samples, found, strict=True) if got is not None]

    def shares(self, samples: Sequence[Sample]) -> list[float]:
        """How much later than the listener the hub's subscriber saw each change (ms)."""
        found = (self.seen.get((unit_path(s.unit), s.stamp)) for s in samples)
        return [(s.received - got) * 1000
                for s, got in zip(samples, found, strict=True) if got is not None]


async def listen_main(bus_address: str) -> None:
    """``--listen``: print "ready", record every unit state change, dump them at SIGTERM."""
    bus = await MessageBus(bus_address=bus_address, bus_type=BusType.SYSTEM).connect()
    seen: list[str] = []

    def on_message(msg: Message) -> None:
        if (msg.message_type is MessageType.SIGNAL and msg.member == "PropertiesChanged"
                and msg.body and msg.body[0] == UNIT_IFACE):
            stamp = msg.body[1].get("StateChangeTimestamp")
            if stamp is not None:
                seen.append(f"{time.time():.6f} {msg.path} {stamp.value}")

    bus.add_message_handler(on_message)
    for member, signature, body, path, destination in (
            ("AddMatch", "s", [REFERENCE_MATCH], DBUS_PATH, DBUS),
            ("Subscribe", "", [], MANAGER_PATH, SYSTEMD)):
        await bus.call(Message(destination=destination, path=path,
                               interface=DBUS if destination == DBUS else MANAGER_IFACE,
                               member=member, signature=signature, body=body))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    # The bus going away (the machine is down) ends it too: never outlive the benchmark.
    gone = asyncio.ensure_future(_disconnected(bus))
    await asyncio.wait([gone, asyncio.ensure_future(stop.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    bus.disconnect()
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.write("".join(line + "\n" for line in seen))
        sys.stdout.flush()


async def _disconnected(bus: MessageBus) -> None:
    with contextlib.suppress(Exception):  # EOFError when the machine went down
        await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]


async def child_until_terminated(config: ChildConfig) -> ChildReport:
    """``child_main``, cancelled by SIGTERM: its cleanup (stop every app) still runs."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await child_main(config)


async def child_main(config: ChildConfig) -> ChildReport:
    report = ChildReport()
    settings = Settings(root=Path(config.root), bus_address=config.bus_address)
    machine = Machine(config.machine, Path(config.machines_dir))
    apps = config.apps
    report.rss_baseline_mib = rss_mib()
    with opened_store(settings) as (store, blobs):
        hub = Hub(settings, store, blobs, journal=JournalReader(machine.nsenter_argv([])))
        lost: list[str] = []
        ready: list[ResyncReason] = []
        listeners = [hub.bus.add_lost_listener(lambda e: lost.append(e.message)),
                     hub.bus.add_ready_listener(ready.append)]
        try:
            await measure_attach(hub, config, report)
            report.rss_attach_mib = rss_mib()
            say(f"attach {report.attach_s:.2f} s, RSS {report.rss_attach_mib:.1f} MiB")
            with cpu_meter(machine, report.restart_cpu_s):
                async with loop_lag(report.restart_loop_lag):
                    await measure_restart_all(hub, apps, report)
            report.rss_after_restart_mib = rss_mib()
            say(f"restart-all {report.restart_s:.2f} s, {len(report.restart_errors)} errors")
            await measure_latency(hub, apps, config.kills, config.kill_gap, report)
            say(f"{len(report.latency)} state changes timed after {report.kills} kills")
        finally:
            report.bus_lost = len(lost)
            report.bus_reconnected = sum(1 for r in ready if r is ResyncReason.RECONNECT)
            report.bus_connected_after = hub.bus.connected
            for unsubscribe in listeners:
                unsubscribe()
            try:
                report.stop_s, report.stop_errors = await call_all(
                    hub, apps, Stop, config.concurrency, STOP_TIMEOUT)
                report.stopped_all = not report.stop_errors and await wait_until(
                    hub, lambda: not hub.state.snapshot().units, 30)
                say(f"stopped every app in {report.stop_s:.2f} s")
            finally:
                await hub.close()
    return report


@contextlib.asynccontextmanager
async def loop_lag(into: list[float], tick: float = 0.005) -> AsyncIterator[None]:
    """How late a ``tick``-second sleep wakes up in this loop: p50, p99 and max in ms, then
    the CPU this thread used during the worst one (ms).

    Lateness with as much CPU is the loop busy with the hub's own work; lateness without is
    the process waiting for a CPU (a busy box)."""
    lags: list[tuple[float, float]] = []

    async def ticker() -> None:
        while True:
            start, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(tick)
            lags.append(((time.perf_counter() - start - tick) * 1000,
                         (time.thread_time() - cpu) * 1000))

    task = asyncio.ensure_future(ticker())
    try:
        yield
    finally:
        task.cancel()
        lat = Latency([late for late, _ in lags])
        worst = max(lags, default=(math.nan, math.nan))
        into[:] = [lat.percentile(50), lat.percentile(99), worst[0], worst[1]]


@contextlib.contextmanager
def cpu_meter(machine: Machine, into: dict[str, float]) -> Iterator[None]:
    """CPU seconds the hub (this process), the machine's systemd and its dbus-daemon use."""
    systemd = psutil.Process(machine.systemd_pid)
    procs = {"hub": psutil.Process(), "systemd": systemd}
    procs.update({p.name(): p for p in systemd.children() if p.name() == "dbus-daemon"})

    def used(p: psutil.Process) -> float:
        times = p.cpu_times()
        return float(times.user + times.system)

    before = {name: used(p) for name, p in procs.items()}
    try:
        yield
    finally:
        for name, p in procs.items():
            with contextlib.suppress(psutil.Error):
                into[name] = used(p) - before[name]


async def measure_attach(hub: Hub, config: ChildConfig, report: ChildReport) -> None:
    start = time.perf_counter()
    async with asyncio.timeout(ATTACH_TIMEOUT):
        steps = await hub.start()
    report.attach_s = time.perf_counter() - start
    problems = report.attach_problems
    problems += [f"plan step {s!r} is not an adoption" for s in steps if not isinstance(s, Adopt)]
    for app in config.apps:
        view = hub.state.app(app)
        if view is None or view.state != AppRunState.RUNNING or view.route is None:
            problems.append(f"{app} not adopted: {view}")
            continue
        pid, restarts = config.expected.get(view.route.unit, [0, 0])
        if view.main_pid != pid or view.n_restarts != restarts:
            problems.append(f"{app}: {view.route.unit} has MainPID {view.main_pid} and "
                            f"{view.n_restarts} restarts, systemd said {pid} and {restarts}")


async def measure_restart_all(hub: Hub, apps: Sequence[str], report: ChildReport) -> None:
    before = {app: v.route.unit for app in apps if (v := hub.state.app(app)) and v.route}
    load = ChangeClock()
    unsubscribe = hub.state.subscribe(load)
    try:
        async with ReferenceListener(hub.settings.bus_address) as reference:
            start = time.perf_counter()
            async with asyncio.timeout(RESTART_TIMEOUT):
                futures = [hub.submit(app, Restart()) for app in apps]
                results = await asyncio.gather(*futures, return_exceptions=True)
            report.restart_s = time.perf_counter() - start
    finally:
        unsubscribe()
    report.restart_load = [s.ms for s in load.samples]
    report.restart_load_ref = reference.latencies(load.samples)
    report.restart_load_share = reference.shares(load.samples)
    report.restart_errors = [f"{app}: {type(r).__name__}: {r}"
                             for app, r in zip(apps, results, strict=True)
                             if isinstance(r, BaseException)]

    def settled(app: str) -> bool:
        view = hub.state.app(app)
        return (view is not None and view.state == AppRunState.RUNNING
                and view.route is not None and view.route.unit != before.get(app)
                and view.units == (view.route.unit,))

    if not await wait_until(hub, lambda: all(settled(a) for a in apps), 10):
        report.restart_problems = [f"{app}: {hub.state.app(app)}"
                                   for app in apps if not settled(app)]


async def measure_latency(hub: Hub, apps: Sequence[str], kills: int, gap: float,
                          report: ChildReport) -> None:
    """SIGKILL units one by one; time every state change of theirs that follows."""
    routed = {app: v.route.unit for app in apps if (v := hub.state.app(app)) and v.route}
    clock = ChangeClock(set(routed.values()))
    restarts_before = {app: view.n_restarts for app in routed if (view := hub.state.app(app))}
    killed: dict[str, int] = {}
    last_kill: dict[str, float] = {}
    order = list(routed)

    def back(app: str) -> bool:
        view = hub.state.app(app)
        return (view is not None and view.state == AppRunState.RUNNING
                and view.n_restarts >= restarts_before[app] + killed[app])

    unsubscribe = hub.state.subscribe(clock)
    try:
        async with ReferenceListener(hub.settings.bus_address) as reference:
            async with asyncio.timeout(KILL_TIMEOUT):
                for i in range(kills):
                    app = order[i % len(order)]
                    await kill_one(hub, clock, app, routed[app], last_kill, report)
                    killed[app] = killed.get(app, 0) + 1
                    # One by one: bunched kills make systemd restart the units together, and
                    # its own queue then delays their signals (bench measures the hub).
                    await asyncio.sleep(gap)
            if not await wait_until(hub, lambda: all(back(a) for a in killed), 20):
                report.latency_problems += [f"{a} did not come back: {hub.state.app(a)}"
                                            for a in killed if not back(a)]
    finally:
        unsubscribe()
    report.kills = sum(killed.values())
    report.latency = [s.ms for s in clock.samples]
    report.latency_ref = reference.latencies(clock.samples)
    report.latency_share = reference.shares(clock.samples)
    for sample in clock.samples:
        report.by_transition.setdefault(sample.transition, []).append(sample.ms)


async def kill_one(hub: Hub, clock: ChangeClock, app: str, unit: str,
                   last_kill: dict[str, float], report: ChildReport) -> None:
    # Let the unit come back before it is killed again (start limit: 5 starts in 10 s).
    wait = last_kill.get(app, -math.inf) + KILL_SPACING_S - time.monotonic()
    if wait > 0:
        await asyncio.sleep(wait)
    await wait_until(hub, functools.partial(_running, hub, app), 10)
    first = clock.arm(unit)
    last_kill[app] = time.monotonic()
    await hub.manager.kill_unit(unit, signal.SIGKILL, whom="main")
    try:
        async with asyncio.timeout(5):
            await first.wait()
    except TimeoutError:
        report.latency_problems.append(f"no state change of {unit} within 5 s")
    report.latency_first.append(clock.first.get(unit, math.nan))


def _running(hub: Hub, app: str) -> bool:
    view = hub.state.app(app)
    return view is not None and view.state == AppRunState.RUNNING


# -- the parent: machine, apps, the child, the table -----------------------------------------

def build_sleeper(workdir: Path, kind: str) -> tuple[Path, str]:
    """The app binary every release runs, and what it is."""
    binary = compile_c(workdir, "sleeper", SLEEPER_C) if kind == "c" else None
    return (binary, "C sleeper") if binary is not None else (HELLO, "examples/hello/hello.py")


def add_apps(store: Store, blobs: BlobStore, apps: Sequence[str], binary: Path) -> None:
    blob = blobs.put_file(binary, max_size=64 << 20)
    for app in apps:
        store.create_app(AppConfig(name=app))
        store.add_release(app, blob.sha256, blob.size, "binary", [], "bench")


async def deploy_all(settings: Settings, machine: Machine, apps: Sequence[str],
                     limit: int) -> tuple[float, list[str]]:
    """Deploy release 1 of every app with a hub that then closes (the apps keep running)."""
    with opened_store(settings) as (store, blobs):
        hub = Hub(settings, store, blobs, journal=JournalReader(machine.nsenter_argv([])))
        await hub.start()
        try:
            return await call_all(hub, apps, lambda: Deploy("1"), limit, DEPLOY_TIMEOUT)
        finally:
            await hub.close()


async def stop_all(settings: Settings, machine: Machine, apps: Sequence[str],
                   limit: int) -> list[str]:
    """Stop every app through a hub (the cleanup path when the child did not finish)."""
    with opened_store(settings) as (store, blobs):
        hub = Hub(settings, store, blobs, journal=JournalReader(machine.nsenter_argv([])))
        await hub.start()
        try:
            _, errors = await call_all(hub, apps, Stop, limit, STOP_TIMEOUT)
            return errors
        finally:
            await hub.close()


def read_main_pids(machine: Machine) -> dict[str, list[int]]:
    """unit -> [MainPID, NRestarts] of every bindrop app unit, as systemctl shows them."""
    out = machine.exec("systemctl", "show", "--property=Id,MainPID,NRestarts",
                       "bindrop-app-*").stdout
    result: dict[str, list[int]] = {}
    for block in out.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in props:
            result[props["Id"]] = [int(props.get("MainPID", 0)), int(props.get("NRestarts", 0))]
    return result


def run_child(config: ChildConfig, workdir: Path) -> ChildReport:
    path = workdir / "child.json"
    path.write_text(json.dumps(asdict(config)))
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", str(path)],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        out, _ = proc.communicate(timeout=CHILD_TIMEOUT)
    except BaseException:
        # Interrupted or too slow: let the child stop its apps and listener, then insist.
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the measuring hub failed (exit {proc.returncode}); see above")
    return ChildReport(**json.loads(lines[-1]))


@dataclass(frozen=True)
class Row:
    what: str
    figure: str
    target: str = ""
    ok: bool | None = None  # None: information, no target
    note: str = ""


def rows_for(report: ChildReport, n: int, concurrency: int) -> list[Row]:
    lat, first, ref = (Latency(report.latency), Latency(report.latency_first),
                       Latency(report.latency_ref))
    load, load_ref = Latency(report.restart_load), Latency(report.restart_load_ref)
    share, load_share = Latency(report.latency_share), Latency(report.restart_load_share)
    restart_ok = (not report.restart_errors and not report.restart_problems
                  and report.bus_lost == 0 and report.bus_connected_after)
    attach_note = (f"all {n} adopted, MainPIDs unchanged" if not report.attach_problems
                   else f"{len(report.attach_problems)} apps not adopted as they ran")
    cpu = ", ".join(f"{k} {v:.1f}" for k, v in report.restart_cpu_s.items())
    lag = "/".join(f"{x:.0f}" for x in report.restart_loop_lag[:3])
    worst_cpu = report.restart_loop_lag[3] if len(report.restart_loop_lag) > 3 else math.nan
    return [
        Row("fresh hub attach (start -> adopted)", f"{report.attach_s:.2f} s",
            f"< {TARGET_ATTACH_S:g} s",
            report.attach_s < TARGET_ATTACH_S and not report.attach_problems, attach_note),
        Row("hub RSS after attach (own process)", f"{report.rss_attach_mib:.1f} MiB",
            f"< {TARGET_RSS_MIB:g} MiB", report.rss_attach_mib < TARGET_RSS_MIB,
            f"python + imports alone: {report.rss_baseline_mib:.1f} MiB"),
        Row(f"restart all {n} at once", f"{report.restart_s:.2f} s", "no errors", restart_ok,
            f"{len(report.restart_errors)} errors, bus lost {report.bus_lost}x, reconnected "
            f"{report.bus_reconnected}x, {len(report.restart_problems)} apps not on a new unit"),
        Row("state change -> subscriber p50/p99", _pair(lat), f"p99 < {TARGET_P99_MS:g} ms",
            lat.percentile(99) < TARGET_P99_MS and len(report.latency) >= 100
            and not report.latency_problems,
            f"n={len(report.latency)} changes after {report.kills} SIGKILLs, "
            f"max {lat.percentile(100):.1f} ms"),
        Row("  of which the hub's own share", _pair(share), f"p99 < {TARGET_P99_MS:g} ms",
            share.percentile(99) < TARGET_P99_MS,
            "subscriber minus a bare D-Bus client, per change"),
        Row("  bare D-Bus client, same changes", _pair(ref), "", None,
            f"n={len(report.latency_ref)}: systemd + dbus-daemon, no bindrop"),
        Row("  the kill's own change only", _pair(first), "", None,
            f"n={len(report.latency_first)} (running -> failed)"),
        Row("during restart-all: CPU", f"{sum(report.restart_cpu_s.values()):.1f} s", "", None,
            f"seconds: {cpu}"),
        Row("  hub event loop lag p50/p99/max", f"{lag} ms", "", None,
            f"how late a 5 ms sleep woke up; the worst with {worst_cpu:.0f} ms on CPU"),
        Row("  state change -> subscriber", _pair(load), "", None,
            f"n={len(report.restart_load)}"),
        Row("  bare D-Bus client, same changes", _pair(load_ref), "", None,
            f"n={len(report.restart_load_ref)}"),
        Row("  the hub's own share", _pair(load_share), "", None,
            f"n={len(report.restart_load_share)}"),
        Row("  hub RSS after restart-all", f"{report.rss_after_restart_mib:.1f} MiB"),
        Row(f"stop all {n} ({concurrency} at a time)", f"{report.stop_s:.2f} s", "", None,
            f"{len(report.stop_errors)} errors"),
    ]


def _pair(lat: Latency) -> str:
    return f"{lat.percentile(50):.1f}/{lat.percentile(99):.1f} ms"


def transition_lines(report: ChildReport) -> list[str]:
    lines = []
    for name, samples in sorted(report.by_transition.items(),
                                key=lambda kv: Latency(kv[1]).percentile(50)):
        lat = Latency(samples)
        lines.append(f"{name:<44} n={len(samples):<4} p50 {lat.percentile(50):7.1f} ms  "
                     f"p99 {lat.percentile(99):7.1f} ms")
    return lines


def print_table(title: str, setup: Sequence[str], rows: Sequence[Row]) -> None:
    print(title)
    for line in setup:
        print(f"  {line}")
    print()
    print(f"  {'measure':<37} {'result':>15}  {'target':<14} {'':<4}  notes")
    for row in rows:
        verdict = "" if row.ok is None else ("PASS" if row.ok else "MISS")
        print(f"  {row.what:<37} {row.figure:>15}  {row.target:<14} {verdict:<4}  {row.note}")


def print_problems(report: ChildReport) -> None:
    for label, items in (("attach", report.attach_problems),
                         ("restart error", report.restart_errors),
                         ("restart", report.restart_problems),
                         ("latency", report.latency_problems),
                         ("stop", report.stop_errors)):
        for item in items[:5]:
            print(f"  ! {label}: {item}")
        if len(items) > 5:
            print(f"  ! {label}: ... and {len(items) - 5} more")


def parent_main(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("bench/hub.py needs root (it boots a private systemd)", file=sys.stderr)
        return 2
    exit_on_signals()
    pid = os.getpid()
    workdir = Path(tempfile.mkdtemp(prefix=f"bindrop-bench-{pid}-"))
    machine = Machine(f"bench-{pid}", workdir / "machines")
    root = Path(f"/srv/bindrop-bench-{pid}")
    apps = app_names(args.apps)
    setup: list[str] = []
    report: ChildReport | None = None
    try:
        start = time.perf_counter()
        machine.up(bare=True)
        setup.append(f"machine up: {time.perf_counter() - start:.1f} s")
        # App units execute blobs from here: it must be visible inside the machine and not
        # hidden from a sandboxed app (not /tmp, /home, /root, /etc, /var).
        root.mkdir(parents=True, mode=0o755)
        settings = Settings(root=root, bus_address=machine.bus_address)
        binary, kind = build_sleeper(workdir, args.sleeper)
        with opened_store(settings) as (store, blobs):
            add_apps(store, blobs, apps, binary)
        say(f"deploying {len(apps)} apps ({kind}), {args.concurrency} at a time")
        deploy_s, errors = asyncio.run(deploy_all(settings, machine, apps, args.concurrency))
        setup.append(f"deploy {len(apps)} apps ({kind}, {args.concurrency} at a time): "
                     f"{deploy_s:.1f} s, {len(errors)} errors")
        if errors:
            for error in errors[:5]:
                print(f"  ! deploy: {error}", file=sys.stderr)
            raise RuntimeError(f"{len(errors)} of {len(apps)} deploys failed")
        expected = read_main_pids(machine)
        say(f"{len(expected)} units running; starting a fresh hub in a child process")
        config = ChildConfig(str(root), machine.bus_address, machine.name,
                             str(workdir / "machines"), apps, expected,
                             args.kills, args.kill_gap, args.concurrency)
        report = run_child(config, workdir)
    except Exception as exc:
        print(f"benchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    finally:
        cleanup(machine, root, workdir, apps, args.concurrency,
                stopped=report is not None and report.stopped_all)
    assert report is not None
    rows = rows_for(report, len(apps), args.concurrency)
    cpus = os.cpu_count()
    print_table(f"bindrop hub benchmark: {len(apps)} apps on a private systemd, {cpus} CPUs",
                setup, rows)
    print()
    print("  state change -> subscriber, by transition (after SIGKILL):")
    for line in transition_lines(report):
        print(f"    {line}")
    print_problems(report)
    return 0 if all(r.ok is not False for r in rows) else 1


def cleanup(machine: Machine, root: Path, workdir: Path, apps: Sequence[str], limit: int,
            *, stopped: bool) -> None:
    """Stop the apps through a hub if the child did not, then machine down, files gone."""
    try:
        if not stopped and machine.read_state() is not None and root.exists():
            say("stopping the apps through a hub")
            try:
                errors = asyncio.run(stop_all(Settings(root=root, bus_address=machine.bus_address),
                                              machine, apps, limit))
                if errors:
                    say(f"{len(errors)} stops failed; the machine's shutdown ends the rest")
            except Exception as exc:
                say(f"could not stop the apps ({exc}); the machine's shutdown ends them")
    finally:
        try:
            machine.down(purge=True)
        finally:
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--apps", type=int, default=200, help="how many apps (default 200)")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="deploys/stops in flight at once (default 16)")
    parser.add_argument("--kills", type=int, default=100,
                        help="units SIGKILLed one by one for the latency figure (default 100)")
    parser.add_argument("--kill-gap", type=float, default=0.1, metavar="SECONDS",
                        help="pause between two kills (default 0.1)")
    parser.add_argument("--sleeper", choices=("c", "hello"), default="c",
                        help="the app: a C sleeper compiled with cc (default; hello.py when "
                        "there is no cc) or examples/hello/hello.py")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--listen", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.apps < 1 or args.concurrency < 1 or args.kills < 1 or args.kill_gap < 0:
        parser.error("--apps, --concurrency and --kills must be at least 1, --kill-gap >= 0")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.listen is not None:
        asyncio.run(listen_main(args.listen))
        return 0
    if args.child is not None:
        config = ChildConfig(**json.loads(args.child.read_text()))
        try:
            report = asyncio.run(child_until_terminated(config))
        except asyncio.CancelledError:
            return 128 + signal.SIGTERM
        print(json.dumps(asdict(report)), flush=True)
        return 0
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
