"""The hub: one D-Bus connection, the state store, an actor per app, reconcile at start.

The hub is the only writer to systemd for bindrop's apps, and the only writer of SQLite.
Everything that changes what runs (CLI, API, dashboard, timers) goes through ``Hub.call``.
Closing the hub leaves every app running: systemd owns them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bindrop.domain.processes import parse_instance_token
from bindrop.errors import BindropError, Cancelled
from bindrop.hub.actor import Actor
from bindrop.hub.alerts import Alerts
from bindrop.hub.care import CareRuns
from bindrop.hub.care_actions import CareActions
from bindrop.hub.commands import Command, Deploy, Restart, Scale, Start, describe
from bindrop.hub.config import ConfigChanges
from bindrop.hub.cron import CronJobs
from bindrop.hub.health import HealthCheck
from bindrop.hub.lifecycle import AppLifecycle, Outcome
from bindrop.hub.liveness import watch_liveness
from bindrop.hub.logs import JournalReader
from bindrop.hub.metrics import Metrics
from bindrop.hub.plan import (
    Adopt,
    DesiredApp,
    ObservedUnit,
    Recreate,
    Redeploy,
    Step,
    StopUnit,
    plan_reconcile,
)
from bindrop.hub.ports import PortPool, port_from_environment
from bindrop.hub.pubsub import PubSub
from bindrop.hub.router import RoutePublisher, StateRoutePublisher
from bindrop.hub.runs import Runs
from bindrop.hub.state import (
    AppRunState,
    AppStateChanged,
    AppView,
    Change,
    Route,
    StateStore,
    UnitStateChanged,
    is_up,
)
from bindrop.hub.system import SystemApps
from bindrop.settings import Settings
from bindrop.store import BlobStore, Store
from bindrop.systemd import Bus, Manager, Watcher
from bindrop.systemd.bus import SERVICE_IFACE
from bindrop.units import parse_app_unit_name
from bindrop.units.names import APP_UNIT_PREFIX

if TYPE_CHECKING:
    from bindrop.hub.tls import TlsManager

log = logging.getLogger(__name__)


class Hub:
    """Owns the bus, the watcher, the state store and the actors. Two may live in one process."""

    def __init__(self, settings: Settings, store: Store, blobs: BlobStore, *,
                 journal: JournalReader | None = None, router: RoutePublisher | None = None,
                 state: StateStore | None = None, events: PubSub | None = None,
                 care_environ: Mapping[str, str] | None = None) -> None:
        """``state``, ``events`` and ``router`` may be given together when the router needs
        them (``ProxyLink(state, store, events)``). ``care_environ``: the ``BINDROP_*`` care
        settings (backup folder, S3, …) that care units get."""
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.journal = journal or JournalReader()
        self.state = state or StateStore()
        #: What the hub's operations changed, for the parts that follow it (``hub.pubsub``).
        self.events = events or PubSub()
        self.router: RoutePublisher = router or StateRoutePublisher(self.state)
        self.ports = PortPool(*settings.port_range)
        self.bus = Bus(settings.bus_address)
        self.manager = Manager(self.bus)
        self.watcher = Watcher(self.bus, prefix=APP_UNIT_PREFIX)
        self._actors: dict[str, Actor] = {}
        #: app -> unit -> its liveness monitor
        self._liveness: dict[str, dict[str, asyncio.Task[None]]] = {}
        self._background: set[asyncio.Future[Any]] = set()
        self._unsubscribe: list[Any] = []
        self.runs = Runs(settings=settings, store=store, blobs=blobs, manager=self.manager,
                         state=self.state, journal=self.journal)
        self.config = ConfigChanges(
            settings=settings, store=store, blobs=blobs, state=self.state,
            manager=self.manager, ports=self.ports, events=self.events, call=self.call,
            drop_actor=self.drop_actor, finish_run=self.runs.finish)
        self.cron = CronJobs(settings=settings, store=store, blobs=blobs, manager=self.manager,
                             events=self.events)
        self.care_runs = CareRuns(settings, self.manager, care_environ)
        self.care = CareActions(store, self.care_runs, self.call)
        self.alerts = Alerts(settings, store, self.state)
        self.system_apps = SystemApps(
            settings=settings, store=store, blobs=blobs, state=self.state, events=self.events,
            update_app=self.config.update_app, call=self.call)
        #: Automatic HTTPS, where the hub runs with proxies (``bindrop hub`` sets it).
        self.tls: TlsManager | None = None
        #: Traffic and resource history (proxies report, the hub samples systemd).
        self.metrics = Metrics(self.state, store, self.manager, self.events)

    # -- life ----------------------------------------------------------------------------

    async def start(self) -> list[Step]:
        """Connect, subscribe, read what runs, reconcile. Returns the plan it applied.

        Returns once running units are adopted and missing ones are being recreated (their
        readiness is awaited in the background, each by its own actor).
        """
        # Subscribe the store before the watcher starts: its first snapshot is an event too.
        self._unsubscribe.append(self.watcher.subscribe(self.state.apply))
        self._unsubscribe.append(self.state.subscribe(self._on_change))
        self.alerts.start()
        await self.bus.open()
        await self.watcher.start()
        await self.watcher.wait_synced()
        steps = await self.reconcile()
        # Apps' scheduled jobs: timers missing after a reboot are created again.
        await self.cron.start()
        self.metrics.start()
        return steps

    async def close(self) -> None:
        """Stop actors (queued commands fail with Cancelled) and disconnect. Apps keep running."""
        self.cron.close()
        await self.care_runs.close()
        await self.alerts.close()
        await self.metrics.close()
        actors, self._actors = list(self._actors.values()), {}
        await asyncio.gather(*(a.stop() for a in actors), return_exceptions=True)
        for fut in list(self._background):
            fut.cancel()
        for monitors in self._liveness.values():
            for monitor in monitors.values():
                monitor.cancel()
        self._liveness.clear()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        await self.watcher.close()
        self.manager.close()
        await self.bus.close()

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- commands ------------------------------------------------------------------------

    def actor(self, app: str) -> Actor:
        actor = self._actors.get(app)
        if actor is None:
            lifecycle = AppLifecycle(
                app, settings=self.settings, store=self.store, blobs=self.blobs,
                manager=self.manager, state=self.state, ports=self.ports, router=self.router,
                journal=self.journal, events=self.events, actor=lambda: self._actors[app])
            actor = self._actors[app] = Actor(app, lifecycle.handle)
        return actor

    def submit(self, app: str, command: Command) -> asyncio.Future[Any]:
        """Queue ``command`` for ``app``; the future resolves with an ``Outcome``."""
        self.store.get_app(app)  # NotFound before anything is queued
        return self.actor(app).submit(command)

    async def call(self, app: str, command: Command) -> Outcome:
        result: Outcome = await self.submit(app, command)
        return result

    async def drop_actor(self, app: str) -> None:
        """Stop the app's actor (after it was destroyed): queued commands fail Cancelled."""
        actor = self._actors.pop(app, None)
        if actor is not None:
            await actor.stop()

    # -- reconcile -----------------------------------------------------------------------

    async def reconcile(self) -> list[Step]:
        """Compare desired config with the units systemd has and apply the plan."""
        desired = [DesiredApp(a.name, a.desired_state == "running", a.current_release or None)
                   for a in self.store.list_apps(include_system=True)]
        observed = []
        for name, unit in self.state.snapshot().units.items():
            parsed = parse_app_unit_name(name)
            if parsed is not None:
                observed.append(ObservedUnit(name, parsed[0], parsed[1], is_up(unit)))
        steps = plan_reconcile(desired, observed)
        await self._apply(steps)
        return steps

    async def _apply(self, steps: Sequence[Step]) -> None:
        for step in steps:
            log.info("reconcile: %s", describe_step(step))
        # Adoptions only read from systemd: all at once (the bus bounds calls in flight).
        adopt: dict[str, list[Adopt]] = {}
        for step in steps:
            if isinstance(step, Adopt):
                adopt.setdefault(step.app, []).append(step)
        await asyncio.gather(*(self._adopt(app, found) for app, found in adopt.items()))
        redeploying = {s.app for s in steps if isinstance(s, Redeploy)}
        for step in steps:
            if isinstance(step, StopUnit):
                log.info("stopping %s: %s", step.unit, step.reason)
                try:
                    await self.manager.stop_unit(step.unit)
                except BindropError as exc:
                    log.warning("could not stop %s: %s", step.unit, exc.message)
                self.ports.release(step.unit)
            elif isinstance(step, Recreate):
                self._in_background(step.app, Start())
            elif isinstance(step, Redeploy):
                self._in_background(step.app, Deploy(step.release))
        # Instances that ended while the hub was away (or a scale it did not finish):
        # bring the adopted generation back to the stored counts.
        for app in sorted(set(adopt) - redeploying):
            self._in_background(app, Scale())

    async def _adopt(self, app: str, steps: list[Adopt]) -> None:
        routes = [r for r in await asyncio.gather(*(self._adopt_one(s) for s in steps))
                  if r is not None]
        if routes:
            await self.router.publish(app, tuple(routes))

    async def _adopt_one(self, step: Adopt) -> Route | None:
        inst = parse_instance_token(step.instance)
        process = inst.process if inst is not None else "web"
        if process != "web":
            return Route(step.unit, step.instance, 0, process)
        try:
            props = await self.manager.get_unit_properties(step.unit, SERVICE_IFACE)
        except BindropError as exc:
            log.warning("could not read %s to adopt it: %s", step.unit, exc.message)
            return None
        port = port_from_environment(list(props.get("Environment") or []))
        if port is None:
            log.warning("%s has no PORT in its environment; not routing to it", step.unit)
            return None
        self.ports.claim(step.unit, port)
        return Route(step.unit, step.instance, port)

    def _in_background(self, app: str, command: Command) -> None:
        future = self.actor(app).submit(command)
        self._background.add(future)

        def done(fut: asyncio.Future[Any]) -> None:
            self._background.discard(fut)
            if fut.cancelled():
                return
            exc = fut.exception()
            if exc is not None and not isinstance(exc, Cancelled):
                log.warning("%s of %s at start-up failed: %s", describe(command), app, exc)

        future.add_done_callback(done)

    # -- reacting to systemd -------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        if isinstance(change, UnitStateChanged) and change.new is None and change.old:
            self.ports.release(change.old.name)
        subject = (change.new or change.old) if isinstance(change, AppStateChanged) else None
        if subject is not None:
            self._keep_liveness(subject.app, subject if subject is change.new else None)
        if (isinstance(change, AppStateChanged) and change.new is not None
                and change.new.state == AppRunState.CRASH_LOOPING
                and (change.old is None or change.old.state != AppRunState.CRASH_LOOPING)):
            self._record_give_up(change.new.app, change.new.problem or "")
        if isinstance(change, AppStateChanged) and change.new is not None:
            seen = set(change.old.gave_up) if change.old is not None else set()
            for unit, problem in change.new.gave_up:
                if (unit, problem) not in seen and (change.new.instances
                                                    or len(change.new.gave_up) > 1):
                    self._record_instance_give_up(change.new.app, unit, problem)

    def _keep_liveness(self, app: str, view: AppView | None) -> None:
        """Run one liveness monitor per serving web instance while the app is RUNNING, if
        it asks for liveness checks (with the web process's own health path if it has one)."""
        serving = view.serving if view is not None and view.state == AppRunState.RUNNING else ()
        config = None
        if serving:
            try:
                config = self.store.get_app(app)
            except BindropError:  # destroyed meanwhile
                config = None
        wanted = {r.unit: r for r in serving} if config and config.liveness_interval_s else {}
        current = self._liveness.setdefault(app, {})
        for unit in [u for u in current if u not in wanted]:
            current.pop(unit).cancel()
        if not wanted or config is None:
            if not current:
                del self._liveness[app]
            return
        health = None
        for unit, route in wanted.items():
            if unit in current:
                continue
            if health is None:
                stored = self.store.get_processes(app).get("web")
                health = (stored.health_path if stored and stored.health_path
                          else config.health_path) or ""

            def hung(reason: str, unit: str = unit) -> None:
                self.store.add_event("app_unresponsive", app,
                                     f"{app} stopped answering ({unit}): {reason}; "
                                     "restarting it", {"unit": unit})
                self._in_background(app, Restart())

            current[unit] = asyncio.ensure_future(watch_liveness(
                HealthCheck(path=health or None), route.port,
                interval=config.liveness_interval_s or 0, on_hung=hung))

    def _record_instance_give_up(self, app: str, unit: str, problem: str) -> None:
        async def record() -> None:
            lines = await self.journal.tail(unit, 20)
            try:
                self.store.add_event("instance_gave_up", app,
                                     f"systemd gave up on {unit}: it {problem}",
                                     {"unit": unit, "log": lines})
            except BindropError as exc:
                log.info("not recording give-up of %s: %s", unit, exc.message)

        task = asyncio.ensure_future(record())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _record_give_up(self, app: str, problem: str) -> None:
        async def record() -> None:
            lines = await self.journal.tail_app(app, 20)
            try:
                self.store.add_event("app_gave_up", app,
                                     f"systemd gave up on {app}: it {problem}",
                                     {"log": lines})
            except BindropError as exc:  # the app was destroyed meanwhile
                log.info("not recording give-up of %s: %s", app, exc.message)

        task = asyncio.ensure_future(record())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def describe_step(step: Step) -> str:
    if isinstance(step, Adopt):
        return f"adopt {step.unit} (running, not restarted)"
    if isinstance(step, Recreate):
        return f"recreate {step.app} release {step.release} (no unit runs it)"
    if isinstance(step, Redeploy):
        return f"deploy {step.app} release {step.release} (another release serves)"
    return f"stop {step.unit}: {step.reason}"
