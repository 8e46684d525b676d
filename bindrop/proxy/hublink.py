"""The proxy's side of the hub link: follow the route stream, confirm, report, wake.

Connects to the hub's control socket, swaps in every table it receives (and acknowledges
its version), answers each drain request once nothing is in flight to that unit, reports
which apps had requests (for idle stops) and what it counted (``bindrop.proxy.counters``),
and reconnects (with a growing pause, at most ``retry_max``) whenever the hub is away.
While the hub is down the last table keeps serving. The messages and their paths are
``bindrop.client.proxywire``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import aiohttp

from bindrop.client.proxywire import (
    STREAM_PATH,
    Ack,
    Activity,
    Drain,
    Drained,
    Report,
    RouteTable,
    TlsState,
    TrafficReport,
    Wake,
    parse_message,
    render_report,
    report_path,
)
from bindrop.errors import InvalidInput
from bindrop.proxy.counters import Counters
from bindrop.proxy.inflight import InFlight

log = logging.getLogger(__name__)

BASE = "http://bindrop"
#: Without even a ping for this long, the hub is taken to be gone.
SILENCE = 10.0
ACTIVITY_INTERVAL = 5.0
#: How long a closing proxy tries to send its last traffic report.
FLUSH_TIMEOUT = 1.0


class HubLink:
    def __init__(self, socket_path: Path, proxy_id: str, *,
                 on_table: Callable[[RouteTable], None], inflight: InFlight,
                 on_tls: Callable[[TlsState], None] | None = None,
                 activity: Callable[[], Collection[str]] = list,
                 activity_interval: float = ACTIVITY_INTERVAL,
                 traffic: Counters | None = None,
                 retry_min: float = 0.1, retry_max: float = 2.0) -> None:
        self.socket_path = socket_path
        self.proxy_id = proxy_id
        self.on_table = on_table
        self.on_tls = on_tls
        self.inflight = inflight
        self.activity = activity
        self.activity_interval = activity_interval
        self.traffic = traffic
        self.retry_min, self.retry_max = retry_min, retry_max
        self.connected = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._waking: dict[str, asyncio.Future[str | None]] = {}

    def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=str(self.socket_path)),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        if (self.connected.is_set() and self.traffic and self._session is not None
                and not self._session.closed):
            # What was counted since the last report, rather than lost with this process.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.report_traffic(), FLUSH_TIMEOUT)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for waking in list(self._waking.values()):
            waking.cancel()
        if self._session is not None:
            await self._session.close()

    # -- waking on-demand apps -----------------------------------------------------------

    async def wake(self, app: str, timeout: float) -> str | None:
        """Ask the hub to start ``app`` and wait until it is ready: None, or why not.
        Requests that arrive meanwhile share the one call."""
        waking = self._waking.get(app)
        if waking is None:
            waking = self._waking[app] = asyncio.ensure_future(self._wake(app, timeout))
            waking.add_done_callback(lambda _: self._waking.pop(app, None))
        return await asyncio.shield(waking)

    async def _wake(self, app: str, timeout: float) -> str | None:
        assert self._session is not None
        wake = Wake(app)
        try:
            async with self._session.post(f"{BASE}{report_path(wake)}", json=render_report(wake),
                                          timeout=aiohttp.ClientTimeout(total=timeout)
                                          ) as response:
                if response.status == 200:
                    return None
                body = await response.json(content_type=None)
                return str(body.get("error", {}).get("message") or response.reason)
        except TimeoutError:
            return f"{app} did not get ready within {timeout:g} s"
        except (aiohttp.ClientError, OSError, ValueError, AttributeError) as exc:
            return f"the hub could not be asked to start {app} ({type(exc).__name__})"

    # -- following the stream ------------------------------------------------------------

    async def _run(self) -> None:
        pause = self.retry_min
        while True:
            try:
                await self._follow()
            except (aiohttp.ClientError, OSError, TimeoutError, InvalidInput) as exc:
                if self.connected.is_set() or pause == self.retry_min:
                    log.warning("hub link: %s; serving the last routes, retrying",
                                exc or type(exc).__name__)
            else:
                pause = self.retry_min
            self.connected.clear()
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.retry_max)

    async def _follow(self) -> None:
        assert self._session is not None
        tasks: set[asyncio.Future[Any]] = set()

        def spawn(coro: Any) -> None:
            task = asyncio.ensure_future(coro)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        try:
            async with self._session.get(f"{BASE}{STREAM_PATH}",
                                         params={"proxy": self.proxy_id}) as response:
                response.raise_for_status()
                log.info("hub link: connected to %s", self.socket_path)
                spawn(self._report_activity())
                while True:
                    async with asyncio.timeout(SILENCE):
                        line = await response.content.readline()
                    if not line:
                        raise aiohttp.ServerDisconnectedError("the hub ended the route stream")
                    message = parse_message(line)
                    if isinstance(message, RouteTable):
                        self.on_table(message)
                        self.connected.set()
                        spawn(self._post(Ack(self.proxy_id, message.version)))
                    elif isinstance(message, TlsState):
                        if self.on_tls is not None:
                            self.on_tls(message)
                        spawn(self._post(Ack(self.proxy_id, message.version)))
                    elif isinstance(message, Drain):
                        spawn(self._report_drained(message.unit))
        finally:
            for task in tasks:
                task.cancel()

    async def _report_drained(self, unit: str) -> None:
        await self.inflight.wait_idle(unit)
        await self._post(Drained(self.proxy_id, unit))

    async def _report_activity(self) -> None:
        while True:
            await asyncio.sleep(self.activity_interval)
            apps = sorted(self.activity())
            if apps:
                await self._post(Activity(self.proxy_id, tuple(apps)))
            await self.report_traffic()

    async def report_traffic(self) -> None:
        """Send what was counted since the last report; kept for the next one if the hub
        did not take it."""
        if not self.traffic:
            return
        entries = self.traffic.take()
        try:
            sent = await self._post(TrafficReport(self.proxy_id, tuple(entries)))
        except asyncio.CancelledError:
            self.traffic.give_back(entries)
            raise
        if not sent:
            self.traffic.give_back(entries)

    async def _post(self, report: Report) -> bool:
        assert self._session is not None
        path = report_path(report)
        try:
            async with self._session.post(f"{BASE}{path}",
                                          json=render_report(report)) as response:
                if response.status >= 400:
                    log.warning("hub link: %s answered %d", path, response.status)
                    return False
                return True
        except (aiohttp.ClientError, OSError) as exc:
            log.info("hub link: could not send %s: %s", path, exc)
            return False
