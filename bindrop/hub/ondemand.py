"""On-demand apps: started by the first request, stopped again when idle.

A proxy that gets a request for a stopped on-demand app asks the hub to ``wake`` it and holds
the request until the app is ready. Proxies report which apps had requests (started or in
flight) every few seconds; an on-demand app with no request for its ``idle_timeout_s`` is
stopped (desired state "stopped", so a reboot does not start it either).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bindrop.errors import BindropError, Conflict
from bindrop.hub.commands import Command, Start, Stop
from bindrop.hub.lifecycle import Outcome
from bindrop.hub.state import AppRunState, AppView, StateStore
from bindrop.store import AppConfig, Store

if TYPE_CHECKING:
    from bindrop.hub.proxylink import ProxyLink

log = logging.getLogger(__name__)

CHECK_INTERVAL = 5.0


def plan_idle_stops(apps: Sequence[AppConfig], views: Mapping[str, AppView],
                    last_active: Mapping[str, float], now: float) -> list[str]:
    """On-demand apps that run and had no request for their idle timeout. Pure.

    ``last_active`` holds, per app, when a request was last reported (or when the app was
    first seen running): an app missing from it is not stopped.
    """
    idle = []
    for config in apps:
        view = views.get(config.name)
        if (config.on_demand and view is not None and view.state == AppRunState.RUNNING
                and config.name in last_active
                and now - last_active[config.name] >= config.idle_timeout_s):
            idle.append(config.name)
    return idle


class OnDemand:
    """Wakes on-demand apps for proxies and stops idle ones (``run`` as a background task).

    ``submit`` queues a command for an app's actor; its future resolves with the ``Outcome``
    (``Hub.submit``).
    """

    def __init__(self, store: Store, state: StateStore,
                 submit: Callable[[str, Command], asyncio.Future[Any]], link: ProxyLink, *,
                 check_interval: float = CHECK_INTERVAL) -> None:
        self.store = store
        self.state = state
        self.submit = submit
        self.link = link
        self.check_interval = check_interval

    async def wake(self, app: str) -> Outcome:
        """Start ``app`` (if it is on demand) and return once it is ready (or raise why not)."""
        if not self.store.get_app(app).on_demand:
            raise Conflict(f"{app} is not on demand; start it with `bindrop start {app}`")
        self.link.record_activity([app])
        outcome: Outcome = await self.submit(app, Start())
        return outcome

    def check(self) -> list[str]:
        """Queue a Stop for every idle on-demand app; return their names."""
        loop = asyncio.get_running_loop()
        apps = self.store.list_apps(include_system=True)
        views = self.state.snapshot().apps
        for config in apps:  # an app seen running for the first time starts its idle clock
            view = views.get(config.name)
            if config.on_demand and view is not None and view.state == AppRunState.RUNNING:
                self.link.last_active.setdefault(config.name, loop.time())
        idle = plan_idle_stops(apps, views, self.link.last_active, loop.time())
        for app in idle:
            log.info("stopping %s: no request for %.0f s (on demand)", app,
                     next(a.idle_timeout_s for a in apps if a.name == app))
            self.link.last_active.pop(app, None)
            future = self.submit(app, Stop())
            future.add_done_callback(_log_failure(app))
        return idle

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                self.check()
            except BindropError as exc:
                log.warning("idle check failed: %s", exc.message)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[OnDemand]:
        task = asyncio.ensure_future(self.run())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _log_failure(app: str) -> Callable[[asyncio.Future[Any]], None]:
    def done(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.warning("idle stop of %s failed: %s", app, future.exception())

    return done
