"""Benchmark of zero-downtime deploys through the API and the proxy (issue 4). Not a test.

Run as root from the repository root (about 15 s; bounded at about 3 minutes):

    python bench/deploy.py                    # 5 deploys over each transport
    python bench/deploy.py --deploys 2        # a quick smoke run
    python bench/deploy.py --program hello    # the app is examples/hello/hello.py, padded

It boots its own private machine (``bench-deploy-<pid>``, with bindrop's hub and proxy
installed; the hub's TCP API on the port the machine installed it with, else on a free port
set with ``BINDROP_API_PORT`` in a drop-in), creates one app with a host, and deploys a
20 MiB executable that listens on 127.0.0.1:$PORT at once: a small C HTTP server compiled
here with ``cc``, padded with 20 MiB of random bytes after the ELF image (never mapped, so
it starts as fast as unpadded), or examples/hello/hello.py padded with a 20 MiB ``#``
comment line when there is no compiler. Every release is a new file, as a new build would
be, and answers with its $BINDROP_RELEASE so the request loop can tell releases apart.

Release 1 is deployed first (not measured). Then, while a steady request loop runs through
the proxy (``--clients`` clients, half on keep-alive connections, half on a new connection
per request, each pausing ``--pause`` between requests), it measures N deploys over (a) the
control socket (``unix:``) and (b) the TCP API on 127.0.0.1 with a token, interleaved, each
as ``bindrop deploy`` does it: upload the file, then deploy the release and wait.

End to end is from the start of the upload to the new release serving through the proxy.
The split, in order, and where each boundary comes from:

    upload       the upload call returns (client clock)
    start        the new unit's ActiveEnterTimestamp (systemd's clock); "of which systemd"
                 is from its InactiveExitTimestamp (the hub asked systemd) to then
    ready        the hub points the app at the new unit: the /v1/events ``state`` event
                 naming it, as received on the control socket (readiness probe + the hub)
    flip         the proxy serves the new release: the first answer of the new release in
                 the request loop, or the old unit's ActiveExitTimestamp if that is earlier
                 (the hub stops the old release only after every proxy confirmed the new
                 table and reported the old one drained, so by then the proxy has swapped)
    drain        the old unit's ActiveExitTimestamp: its stop began (systemd's clock)
    old stopped  the old unit's InactiveEnterTimestamp (systemd's clock)

and "call" is the deploy call alone, from the end of the upload until it returned (after
"old stopped"). systemd's timestamps are CLOCK_REALTIME, the same clock as ``time.time()``
here; they come from the units' PropertiesChanged signals on the machine's bus (a transient
unit is collected, and ``systemctl show`` knows nothing of it, soon after it stopped).

The hub's journal has no line for any of these steps, so the split cannot be read from it.
The end of "flip" is known to within the request loop's resolution (the gap between two
answers, printed with the table), and the proxy's acknowledgement of the new table reaches
the hub a little after it swapped: that latency is counted in "drain". Exact figures need
the hub to log each step of a deploy (see the end of the output).

Target (issue 4): under 2 s end to end for every deploy on loopback, with zero failed
requests (an error or an answer other than 200). Exits 0 when met, 1 when missed, 2 when
the run itself failed. The machine goes down and is purged at the end, also after an error
or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # runnable from a checkout without installing bindrop
    sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
from benchkit import HELLO, compile_c, exit_on_signals, say  # noqa: E402
from dbus_fast import BusType, Message, MessageType  # noqa: E402
from dbus_fast.aio import MessageBus  # noqa: E402

from bindrop.client.client import Client  # noqa: E402
from bindrop.machine import Machine  # noqa: E402
from bindrop.machine.machine import free_port  # noqa: E402
from bindrop.systemd.bus import DBUS, DBUS_PATH, MANAGER_IFACE, SYSTEMD, UNIT_IFACE  # noqa: E402
from bindrop.systemd.paths import MANAGER_PATH, UNIT_PATH_PREFIX, unit_path  # noqa: E402

APP = "bench"
HOST = "bench.test"

TARGET_E2E_S = 2.0

# Guards, not expectations: a deploy takes about a second.
RUN_TIMEOUT = 100.0
DEPLOY_TIMEOUT = 30.0
HUB_TIMEOUT = 30.0
REQUEST_TIMEOUT = 5.0
STAMP_WAIT = 2.0

UNIT_MATCH = ("type='signal',interface='org.freedesktop.DBus.Properties',"
              "member='PropertiesChanged',"
              f"path_namespace='{UNIT_PATH_PREFIX.rstrip('/')}'")
STAMPS = ("InactiveExitTimestamp", "ActiveEnterTimestamp", "ActiveExitTimestamp",
          "InactiveEnterTimestamp")
# What the hub could log (INFO, lifecycle + proxylink) to make the split exact.
SUGGESTED_LOG = (
    "bench: deploy of release 3 started: starting bindrop-app-bench-3.service on port 41234",
    "bench: bindrop-app-bench-3.service started in 61 ms; ready after 1 probe in 7 ms",
    "bench: route table 9 confirmed by 1 proxy in 11 ms",
    "bench: bindrop-app-bench-2.service drained by 1 proxy in 4 ms; stopped in 6 ms",
    "bench: release 3 is live (deploy took 95 ms)",
)
DROP_IN_DIR = "/etc/systemd/system/bindrop.service.d"
RELEASE_RE = re.compile(rb"release ([0-9][0-9.]*)")

SERVER_C = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char keep[256], last[256];
static int keep_len, last_len;

static void on_term(int sig) { (void)sig; _exit(0); }

static int send_all(int c, const char *p, int n) {
    while (n > 0) {
        ssize_t w = write(c, p, (size_t)n);
        if (w <= 0) return -1;
        p += w; n -= (int)w;
    }
    return 0;
}

/* One connection: HTTP/1.1 GETs, kept alive until the client closes or asks to. */
static void *serve(void *arg) {
    int c = (int)(long)arg;
    char buf[16384];
    size_t have = 0;
    for (;;) {
        char *end;
        while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
            ssize_t n;
            if (have == sizeof buf) goto done;
            n = read(c, buf + have, sizeof buf - have);
            if (n <= 0) goto done;
            have += (size_t)n;
        }
        size_t used = (size_t)(end + 4 - buf);
        int closing = memmem(buf, used, "onnection: close", 16) != NULL;
        if (send_all(c, closing ? last : keep, closing ? last_len : keep_len) < 0) goto done;
        memmove(buf, buf + used, have - used);
        have -= used;
        if (closing) goto done;
    }
done:
    close(c);
    return NULL;
}

int main(void) {
    const char *port = getenv("PORT"), *release = getenv("BINDROP_RELEASE");
    struct sigaction sa;
    struct sockaddr_in addr;
    pthread_attr_t attr;
    char body[96];
    int one = 1, fd, body_len;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (port == NULL) return 2;
    body_len = snprintf(body, sizeof body, "bench release %s\n", release ? release : "?");
    keep_len = snprintf(keep, sizeof keep, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                        "Content-Length: %d\r\n\r\n%s", body_len, body);
    last_len = snprintf(last, sizeof last, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                        "Connection: close\r\nContent-Length: %d\r\n\r\n%s", body_len, body);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 3;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) return 4;
    if (listen(fd, 128) < 0) return 5;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        pthread_t t;
        int c = accept(fd, NULL, NULL);
        if (c < 0) continue;
        if (pthread_create(&t, &attr, serve, (void *)(long)c) != 0) close(c);
    }
}
"""


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; NaN without values."""
    clean = sorted(v for v in values if not math.isnan(v))
    if not clean:
        return math.nan
    return clean[max(1, math.ceil(q / 100 * len(clean))) - 1]


# -- the app binary ----------------------------------------------------------------------

@dataclass(frozen=True)
class Program:
    """What every release runs, before padding."""

    path: Path
    kind: str  # "C server" or "hello.py"


def build_program(workdir: Path, kind: str) -> Program:
    binary = compile_c(workdir, "server", SERVER_C, "-pthread") if kind == "c" else None
    return Program(binary, "C server") if binary is not None else Program(HELLO, "hello.py")


def build_release(program: Program, size: int, out: Path) -> Path:
    """A new file of ``size`` bytes: the program, then padding no other release shares."""
    head = program.path.read_bytes()
    pad = max(0, size - len(head))
    with open(out, "wb") as f:
        f.write(head)
        if program.kind == "C server":
            f.write(os.urandom(pad))
        else:
            line = b"\n#" + os.urandom(8).hex().encode()
            f.write(line + b"x" * max(0, pad - len(line) - 1) + b"\n")
    out.chmod(0o755)
    return out


# -- the request loop (its own thread and event loop) --------------------------------------

@dataclass(frozen=True)
class Answer:
    done: float  # time.time() when the answer (or the error) was complete
    status: int  # 0: no answer
    release: str | None
    error: str | None = None


class RequestLoop:
    """``clients`` clients asking GET / through the proxy until stopped; the even ones keep
    their connection alive, the odd ones open a new one per request.

    It runs in a thread of its own so that the deploy client's work (a 20 MiB upload) does
    not delay it. ``answers`` only grows; reading it from another thread is safe."""

    def __init__(self, url: str, host: str, clients: int, pause: float) -> None:
        self.url, self.host, self.clients, self.pause = url, host, clients, pause
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="request-loop", daemon=True)
        self.crashed: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=REQUEST_TIMEOUT + 5)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # shown in the report, never lost in a thread
            self.crashed = exc

    async def _main(self) -> None:
        await asyncio.gather(*(self._client(keep_alive=i % 2 == 0)
                               for i in range(self.clients)))

    async def _client(self, *, keep_alive: bool) -> None:
        connector = aiohttp.TCPConnector(limit=1, force_close=not keep_alive)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                         headers={"Host": self.host}) as session:
            while not self._stop.is_set():
                self.answers.append(await self._ask(session))
                if self.pause:
                    await asyncio.sleep(self.pause)

    async def _ask(self, session: aiohttp.ClientSession) -> Answer:
        try:
            async with session.get(self.url) as response:
                body = await response.read()
            found = RELEASE_RE.search(body)
            release = found.group(1).decode().split(".", 1)[0] if found else None
            return Answer(time.time(), response.status, release)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return Answer(time.time(), 0, None, f"{type(exc).__name__}: {exc}"[:200])

    def first_from(self, release: str, since: float) -> float | None:
        return next((a.done for a in list(self.answers)
                     if a.release == release and a.done >= since), None)

    async def wait_first_from(self, release: str, since: float, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while (found := self.first_from(release, since)) is None:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.01)
        return found


# -- what systemd and the hub say ----------------------------------------------------------

class UnitStamps:
    """systemd's state timestamps of every unit, from its PropertiesChanged signals (a
    transient unit is collected once stopped, so they cannot be read afterwards)."""

    def __init__(self, bus_address: str) -> None:
        self.bus_address = bus_address
        self.stamps: dict[str, dict[str, int]] = {}  # object path -> property -> usec
        self._bus: MessageBus | None = None

    async def __aenter__(self) -> UnitStamps:
        bus = await MessageBus(bus_address=self.bus_address, bus_type=BusType.SYSTEM).connect()
        self._bus = bus
        bus.add_message_handler(self._on_message)
        # Matched and subscribed before the first deploy: no change falls before it.
        for member, signature, body, path, destination in (
                ("AddMatch", "s", [UNIT_MATCH], DBUS_PATH, DBUS),
                ("Subscribe", "", [], MANAGER_PATH, SYSTEMD)):
            await bus.call(Message(destination=destination, path=path,
                                   interface=DBUS if destination == DBUS else MANAGER_IFACE,
                                   member=member, signature=signature, body=body))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._bus is not None:
            self._bus.disconnect()
            self._bus = None

    def _on_message(self, msg: Message) -> None:
        if (msg.message_type is not MessageType.SIGNAL or msg.member != "PropertiesChanged"
                or not msg.body or msg.body[0] != UNIT_IFACE or msg.path is None):
            return
        seen = self.stamps.setdefault(msg.path, {})
        for name in STAMPS:
            variant = msg.body[1].get(name)
            if variant is not None and variant.value:
                seen[name] = int(variant.value)

    def get(self, unit: str, name: str) -> float | None:
        usec = self.stamps.get(unit_path(unit), {}).get(name)
        return usec / 1e6 if usec else None

    async def wait(self, unit: str, name: str, timeout: float = STAMP_WAIT) -> float | None:
        deadline = time.monotonic() + timeout
        while (found := self.get(unit, name)) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return found


class RouteWatch:
    """When the hub set each route: the ``state`` events of ``/v1/events`` for the app, as
    received (the hub emits one at the moment it points the app at a new unit)."""

    def __init__(self, client: Client, app: str) -> None:
        self.client, self.app = client, app
        self.first_seen: dict[str, float] = {}  # unit -> time.time() of the first event
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    async def __aenter__(self) -> RouteWatch:
        self._task = asyncio.ensure_future(self._follow())
        async with asyncio.timeout(10):
            await self._started.wait()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        # Raw lines rather than Client.events: the first line ("retry:") tells that the hub
        # has subscribed, and an app with no unit yet sends no state event to wait for.
        kind = ""
        async for raw in self.client.lines("/v1/events", params={"app": self.app}):
            received = time.time()
            self._started.set()
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind == "state":
                unit = (json.loads(line[5:]).get("live") or {}).get("unit")
                if unit:
                    self.first_seen.setdefault(unit, received)
            elif not line:
                kind = ""

    async def wait(self, unit: str, timeout: float = STAMP_WAIT) -> float | None:
        deadline = time.monotonic() + timeout
        while (found := self.first_seen.get(unit)) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return found


# -- one deploy ------------------------------------------------------------------------------

PHASES = ("upload", "start", "ready", "flip", "drain", "old stopped")


@dataclass
class DeployTiming:
    transport: str
    release: int = 0
    unit: str = ""
    old_unit: str = ""
    t0: float = math.nan  # upload started
    uploaded: float = math.nan
    activating: float = math.nan  # new unit InactiveExitTimestamp (systemd began)
    started: float = math.nan  # new unit ActiveEnterTimestamp
    routed: float = math.nan  # the hub set the route to the new unit
    first_answer: float = math.nan  # first answer of the new release in the request loop
    old_stopping: float = math.nan  # old unit ActiveExitTimestamp
    old_stopped: float = math.nan  # old unit InactiveEnterTimestamp
    returned: float = math.nan  # the deploy call returned
    failed_requests: int = 0
    requests: int = 0
    problems: list[str] = field(default_factory=list)

    def phases(self) -> dict[str, float]:
        marks = [self.t0, self.uploaded, self.started, self.routed, self.serving,
                 self.old_stopping, self.old_stopped]
        return {name: b - a for name, a, b in zip(PHASES, marks[:-1], marks[1:], strict=True)}

    @property
    def serving(self) -> float:
        """When the proxy served the new release (see the module docstring)."""
        known = [t for t in (self.first_answer, self.old_stopping) if not math.isnan(t)]
        return min(known, default=math.nan)

    @property
    def end_to_end(self) -> float:
        return self.serving - self.t0

    @property
    def deploy_call(self) -> float:
        return self.returned - self.uploaded


async def one_deploy(client: Client, transport: str, file: Path, loop: RequestLoop,
                     units: UnitStamps, routes: RouteWatch, old_unit: str) -> DeployTiming:
    timing = DeployTiming(transport, old_unit=old_unit)
    before = len(loop.answers)
    async with asyncio.timeout(DEPLOY_TIMEOUT):
        timing.t0 = time.time()
        release = await client.upload_release(APP, file)
        timing.uploaded = time.time()
        outcome = await client.deploy(APP, int(release["number"]))
        timing.returned = time.time()
    timing.release = int(release["number"])
    timing.unit = str(outcome["unit"])
    if old_unit not in outcome.get("stopped", []):
        timing.problems.append(f"the deploy did not report {old_unit} stopped: {outcome}")
    timing.started = await units.wait(timing.unit, "ActiveEnterTimestamp") or math.nan
    timing.activating = await units.wait(timing.unit, "InactiveExitTimestamp") or math.nan
    timing.routed = await routes.wait(timing.unit) or math.nan
    timing.first_answer = await loop.wait_first_from(str(timing.release), timing.t0,
                                                STAMP_WAIT) or math.nan
    timing.old_stopping = await units.wait(old_unit, "ActiveExitTimestamp") or math.nan
    timing.old_stopped = await units.wait(old_unit, "InactiveEnterTimestamp") or math.nan
    for name in ("activating", "started", "routed", "first_answer", "old_stopping",
                 "old_stopped"):
        if math.isnan(getattr(timing, name)):
            timing.problems.append(f"release {timing.release}: no time for {name}")
    window = [a for a in list(loop.answers)[before:] if a.done <= timing.returned]
    timing.requests = len(window)
    timing.failed_requests = sum(1 for a in window if a.status != 200)
    return timing


# -- the run ---------------------------------------------------------------------------------

@dataclass
class Report:
    setup: list[str] = field(default_factory=list)
    deploys: list[DeployTiming] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    loop_crashed: str | None = None
    hub_journal: list[str] = field(default_factory=list)


def tcp_api_port(machine: Machine) -> int:
    """The port of the hub's TCP API: the one the machine installed it with, else a free one
    set in a drop-in (which outranks the unit's own Environment=) and the hub restarted."""
    port = getattr(machine.running_state(), "api_port", None)
    if isinstance(port, int):
        return port
    port = free_port()
    machine.exec("mkdir", "-p", DROP_IN_DIR)
    machine.exec("tee", f"{DROP_IN_DIR}/bench.conf",
                 input=f"[Service]\nEnvironment=BINDROP_API_PORT={port}\n")
    machine.exec("systemctl", "daemon-reload")
    machine.exec("systemctl", "restart", "bindrop.service")
    return port


async def wait_for_hub(client: Client, timeout: float) -> None:
    """Until the hub answers and a proxy follows its routes (the deploy waits for it)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            info = await client.server()
            if info.get("proxies", 0) >= 1:
                return
            last = f"{info.get('proxies')} proxies connected"
        except Exception as exc:  # not up yet: try again until the deadline
            last = exc
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the hub was not ready with a proxy within {timeout:g} s: {last}")


async def measure(machine: Machine, api_port: int, program: Program, workdir: Path,
                  args: argparse.Namespace, report: Report) -> None:
    state = machine.running_state()
    size = int(args.size_mib * (1 << 20))
    local = Client(f"unix:{machine.control_socket}")
    watch_client = Client(f"unix:{machine.control_socket}")
    remote: Client | None = None
    loop: RequestLoop | None = None
    try:
        await wait_for_hub(local, HUB_TIMEOUT)
        await local.create_app({"name": APP, "hosts": [HOST]})
        token = (await local.create_token("bench-deploy"))["token"]
        remote = Client(f"http://127.0.0.1:{api_port}", token)
        await wait_for_hub(remote, HUB_TIMEOUT)
        async with UnitStamps(machine.bus_address) as units, \
                RouteWatch(watch_client, APP) as routes:
            start = time.perf_counter()
            first = build_release(program, size, workdir / "release-1")
            release = await local.upload_release(APP, first)
            outcome = await local.deploy(APP, int(release["number"]))
            old_unit = str(outcome["unit"])
            report.setup.append(f"release 1 (not measured): {time.perf_counter() - start:.2f} s")
            loop = RequestLoop(f"http://127.0.0.1:{state.http_port}/", HOST, args.clients,
                               args.pause)
            loop.start()
            if await loop.wait_first_from("1", 0, 5) is None:
                raise RuntimeError("release 1 does not answer through the proxy")
            # Interleaved, so that neither transport always goes first on a fresh hub.
            plan = [("unix", local), ("tcp", remote)] * args.deploys
            for n, (transport, client) in enumerate(plan, start=2):
                file = build_release(program, size, workdir / f"release-{n}")
                await asyncio.sleep(args.gap)  # a steady loop between deploys too
                timing = await one_deploy(client, transport, file, loop, units, routes,
                                          old_unit)
                file.unlink()
                old_unit = timing.unit
                report.deploys.append(timing)
                say(f"{transport} release {timing.release}: end to end "
                    f"{timing.end_to_end:.2f} s, deploy call {timing.deploy_call:.2f} s, "
                    f"{timing.failed_requests} failed of {timing.requests} requests")
            await asyncio.sleep(args.gap)
    finally:
        if loop is not None:
            loop.stop()
            report.answers = list(loop.answers)
            if loop.crashed is not None:
                report.loop_crashed = f"{type(loop.crashed).__name__}: {loop.crashed}"
        for closing in (local, watch_client, remote):
            if closing is not None:
                await closing.close()


def read_hub_journal(machine: Machine) -> list[str]:
    proc = machine.exec("journalctl", "-u", "bindrop.service", "-o", "short-precise",
                        "--no-pager", check=False, timeout=20)
    return proc.stdout.splitlines()


# -- the table -------------------------------------------------------------------------------

def print_report(report: Report, program: Program, args: argparse.Namespace) -> bool:
    deploys = report.deploys
    transports = [t for t in ("unix", "tcp") if any(d.transport == t for d in deploys)]
    print(f"bindrop deploy benchmark: {args.size_mib:g} MiB {program.kind}, {args.deploys} "
          f"deploys per transport, {os.cpu_count()} CPUs, request loop {args.clients} clients")
    for line in report.setup:
        print(f"  {line}")
    print()
    print("  seconds per deploy (end to end = upload start -> first answer of the new "
          "release through the proxy)")
    cols = ["e2e", *PHASES, "call"]
    print(f"  {'via':<5} {'rel':>3} " + " ".join(f"{c:>11}" for c in cols) + "  failed/requests")
    for d in deploys:
        values = [d.end_to_end, *d.phases().values(), d.deploy_call]
        print(f"  {d.transport:<5} {d.release:>3} " + " ".join(f"{v:>11.3f}" for v in values)
              + f"  {d.failed_requests}/{d.requests}")
    print()
    print("  p50 / max, seconds")
    print(f"  {'phase':<28}" + "".join(f"{t:>20}" for t in transports))
    rows: list[tuple[str, str]] = [(p, p) for p in PHASES]
    rows.insert(2, ("  of which systemd", "systemd"))
    rows += [("end to end", "e2e"), ("deploy call (after upload)", "call")]
    for label, key in rows:
        cells = []
        for t in transports:
            values = [_value(d, key) for d in deploys if d.transport == t]
            cells.append(f"{percentile(values, 50):.3f} / {max(values, default=math.nan):.3f}")
        print(f"  {label:<28}" + "".join(f"{c:>20}" for c in cells))
    print()
    answers = report.answers
    statuses = Counter(str(a.status) if a.status else "error" for a in answers)
    failed = sum(1 for a in answers if a.status != 200)
    worst = max((d.end_to_end for d in deploys), default=math.nan)
    ok = (len(deploys) == 2 * args.deploys and failed == 0 and worst < TARGET_E2E_S
          and not any(d.problems for d in deploys) and report.loop_crashed is None)
    print(f"  target: < {TARGET_E2E_S:g} s end to end on loopback, zero failed requests: "
          f"{'PASS' if ok else 'MISS'} (worst {worst:.3f} s, {failed} failed)")
    span = (answers[-1].done - answers[0].done) if len(answers) > 1 else math.nan
    by_release = Counter(a.release for a in answers if a.release)
    print(f"  request loop: {len(answers)} requests in {span:.1f} s "
          f"({len(answers) / span if span else math.nan:.0f}/s), by status "
          + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
          + f"; {len(by_release)} releases answered")
    errors = Counter(a.error for a in answers if a.error)
    for error, count in errors.most_common(5):
        print(f"  ! {count} x {error}")
    if report.loop_crashed:
        print(f"  ! the request loop crashed: {report.loop_crashed}")
    for d in deploys:
        for problem in d.problems:
            print(f"  ! {d.transport}: {problem}")
    done = sorted(a.done for a in answers)
    gap = percentile([b - a for a, b in itertools.pairwise(done)], 50)
    print(f"  resolution of the end of flip: one answer every {gap * 1000:.1f} ms (median)")
    print(f"  hub journal: {len(report.hub_journal)} lines, none for a deploy step; exact "
          "figures need INFO lines per step, e.g.")
    for line in SUGGESTED_LOG:
        print(f"    {line}")
    if args.show_journal:
        for line in report.hub_journal:
            print(f"    {line}")
    return ok


def _value(d: DeployTiming, key: str) -> float:
    if key == "e2e":
        return d.end_to_end
    if key == "call":
        return d.deploy_call
    if key == "systemd":
        return d.started - d.activating
    return d.phases()[key]


# -- main ------------------------------------------------------------------------------------

async def run(machine: Machine, api_port: int, program: Program, workdir: Path,
              args: argparse.Namespace, report: Report) -> None:
    async with asyncio.timeout(RUN_TIMEOUT):
        await measure(machine, api_port, program, workdir, args, report)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--deploys", type=int, default=5,
                        help="measured deploys per transport (default 5)")
    parser.add_argument("--size-mib", type=float, default=20.0,
                        help="size of every release's file in MiB (default 20)")
    parser.add_argument("--clients", type=int, default=4,
                        help="request loop clients, half of them keep-alive (default 4)")
    parser.add_argument("--pause", type=float, default=0.01, metavar="SECONDS",
                        help="pause of each client between two requests (default 0.01)")
    parser.add_argument("--gap", type=float, default=0.3, metavar="SECONDS",
                        help="pause between two deploys (default 0.3)")
    parser.add_argument("--program", choices=("c", "hello"), default="c",
                        help="the app: a C HTTP server compiled with cc (default; hello.py "
                        "when there is no cc) or examples/hello/hello.py")
    parser.add_argument("--show-journal", action="store_true",
                        help="print the hub's journal (journalctl -u bindrop.service) too")
    args = parser.parse_args(argv)
    if not 1 <= args.deploys <= 20 or args.clients < 1 or args.size_mib <= 0 \
            or args.pause < 0 or args.gap < 0:
        parser.error("--deploys must be 1-20, --clients at least 1, --size-mib above 0, "
                     "--pause and --gap at least 0")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/deploy.py needs root (it boots a private systemd)", file=sys.stderr)
        return 2
    exit_on_signals()
    pid = os.getpid()
    workdir = Path(tempfile.mkdtemp(prefix=f"bindrop-bench-deploy-{pid}-"))
    machine = Machine(f"bench-deploy-{pid}", workdir / "machines")
    report = Report()
    try:
        program = build_program(workdir, args.program)
        start = time.perf_counter()
        machine.up(bare=False)
        api_port = tcp_api_port(machine)
        report.setup.append(f"machine up with bindrop, TCP API on 127.0.0.1:{api_port}: "
                            f"{time.perf_counter() - start:.1f} s")
        say(f"machine {machine.name} up; deploying {args.size_mib:g} MiB {program.kind}")
        try:
            asyncio.run(run(machine, api_port, program, workdir, args, report))
        finally:
            report.hub_journal = read_hub_journal(machine)
    except Exception as exc:
        traceback.print_exc()
        print(f"benchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    finally:
        try:
            machine.down(purge=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if print_report(report, program, args) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
