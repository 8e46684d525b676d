"""The state store: the in-memory view of bindrop's units, and the only writer of run-state.

Fed by the systemd watcher (``apply``) and by the hub's own observations (which instance the
route points at, a failed readiness check). Emits ``(old, new)`` only when something changed,
as frozen values; readers take a ``snapshot`` or ``subscribe`` (which returns its own
unsubscribe). Nothing here is ever written to SQLite.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from bindrop.systemd.events import Resynced, UnitChanged, UnitGone, WatchEvent
from bindrop.systemd.jobs import describe_unit_exit
from bindrop.systemd.types import ActiveState, SubState, UnitState
from bindrop.units.names import parse_app_unit_name

log = logging.getLogger(__name__)

GONE_KEPT = 512


class AppRunState(StrEnum):
    RUNNING = "running"
    STARTING = "starting"  # a unit is coming up and nothing is routed yet
    RESTARTING = "restarting"  # the live unit crashed and systemd is restarting it
    STOPPED = "stopped"
    CRASH_LOOPING = "crash-looping"  # systemd gave up (start limit hit, or start failed)
    FAILED_READINESS = "failed-readiness"  # the last start never passed its check


@dataclass(frozen=True)
class Route:
    """One live instance of the app: its unit, its token (``3``, ``3.1_worker_2``) and,
    for a ``web`` instance, the ``port`` traffic goes to (0 for other processes)."""

    unit: str
    instance: str
    port: int
    process: str = "web"

    @property
    def web(self) -> bool:
        return self.process == "web" and self.port > 0


@dataclass(frozen=True)
class AppView:
    """One app as systemd and the hub see it now. Derived; never stored."""

    app: str
    state: AppRunState
    route: Route | None = None
    units: tuple[str, ...] = ()
    deploying: bool = False  # a unit other than the routed one is up (deploy or restart)
    holding: bool = False  # a no-overlap deploy: proxies hold requests until it is routed
    main_pid: int = 0
    n_restarts: int = 0
    active_since: int = 0  # usec since the epoch (systemd's ActiveEnterTimestamp)
    problem: str | None = None  # why it gave up or failed readiness, for a person
    #: every live instance (web and other processes), in (process, number) order
    instances: tuple[Route, ...] = ()
    #: the web instances traffic may go to now (their unit is active)
    serving: tuple[Route, ...] = ()
    #: instances systemd gave up on since the last deploy, scale or restart: (unit, why)
    gave_up: tuple[tuple[str, str], ...] = ()

    @property
    def live_release(self) -> str | None:
        first = self.route or (self.instances[0] if self.instances else None)
        return first.instance.split("_", 1)[0].split(".", 1)[0] if first else None


@dataclass(frozen=True)
class UnitStateChanged:
    old: UnitState | None
    new: UnitState | None  # None: the unit is gone


@dataclass(frozen=True)
class AppStateChanged:
    old: AppView | None
    new: AppView | None  # None: no unit, route or problem left to show


Change = UnitStateChanged | AppStateChanged
Listener = Callable[[Change], None]


@dataclass(frozen=True)
class Snapshot:
    units: Mapping[str, UnitState]
    apps: Mapping[str, AppView]


@dataclass
class _AppFacts:
    """What the hub has told the store about an app (run-state, not config)."""

    routes: tuple[Route, ...] = ()
    problem: str | None = None
    problem_state: AppRunState | None = None
    holding: bool = False
    units: set[str] = field(default_factory=set)
    gave_up: tuple[tuple[str, str], ...] = ()


class StateStore:
    def __init__(self) -> None:
        self._units: dict[str, UnitState] = {}
        self._facts: dict[str, _AppFacts] = {}
        self._views: dict[str, AppView] = {}
        self._listeners: list[Listener] = []
        self._changed = asyncio.Event()
        # Final states of recently removed units: a deploy asks why its unit vanished.
        self._gone: dict[str, UnitState] = {}

    # -- reading -------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return Snapshot(units=dict(self._units), apps=dict(self._views))

    def unit(self, name: str) -> UnitState | None:
        return self._units.get(name)

    def app(self, app: str) -> AppView | None:
        return self._views.get(app)

    def last_state(self, name: str) -> UnitState | None:
        """The unit's final state if systemd removed it recently (bounded memory)."""
        return self._gone.get(name)

    def units_of(self, app: str) -> list[UnitState]:
        facts = self._facts.get(app)
        return [self._units[u] for u in sorted(facts.units)] if facts else []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every change, synchronously, in order. Returns unsubscribe."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    async def changed(self) -> None:
        """Return at the next change of anything (a wake-up for waiters, no payload)."""
        await self._changed.wait()

    # -- writing: from the watcher -------------------------------------------------------

    def apply(self, event: WatchEvent) -> None:
        """Fold one watcher event into the view."""
        if isinstance(event, Resynced):
            gone = set(self._units) - set(event.snapshot)
            for name in sorted(gone):
                self._set_unit(name, None)
            for name, state in sorted(event.snapshot.items()):
                self._set_unit(name, state)
        elif isinstance(event, UnitChanged):
            self._set_unit(event.name, event.new)
        elif isinstance(event, UnitGone):
            self._set_unit(event.name, None, last=event.last)

    def _set_unit(self, name: str, state: UnitState | None, last: UnitState | None = None) -> None:
        parsed = parse_app_unit_name(name)
        old = self._units.get(name)
        if state is None:
            self._units.pop(name, None)
            final = last or old
            if final is not None:
                self._gone[name] = final
                while len(self._gone) > GONE_KEPT:
                    del self._gone[next(iter(self._gone))]
        else:
            self._units[name] = state
            self._gone.pop(name, None)
        # Listeners hear of the unit once the app's facts say the same (units_of included).
        changed = UnitStateChanged(old, state) if old != state else None
        if parsed is None:
            if changed is not None:
                self._emit(changed)
            return
        app, _ = parsed
        facts = self._facts.setdefault(app, _AppFacts())
        if state is None:
            facts.units.discard(name)
            final = last or old
            if any(r.unit == name for r in facts.routes):
                facts.routes = tuple(r for r in facts.routes if r.unit != name)
                # A live unit vanished while failed: systemd gave up on it.
                if final is not None and final.active_state == ActiveState.FAILED:
                    facts.gave_up = (*facts.gave_up, (name, describe_unit_exit(final)))
                    if not facts.routes:
                        facts.problem_state = AppRunState.CRASH_LOOPING
                        facts.problem = describe_unit_exit(final)
        else:
            facts.units.add(name)
        if changed is not None:
            self._emit(changed)
        self._refresh(app)

    # -- writing: from the hub -----------------------------------------------------------

    def set_route(self, app: str, route: Route | None) -> None:
        """The hub flipped (or cleared) the app's route: one web instance, or none."""
        self.set_routes(app, () if route is None else (route,))

    def set_routes(self, app: str, routes: tuple[Route, ...]) -> None:
        """The hub flipped the app's live instances (web and others; empty: none). A
        non-empty set clears a previous problem and the instances given up on."""
        facts = self._facts.setdefault(app, _AppFacts())
        facts.routes = tuple(sorted(routes, key=route_order))
        if routes:
            facts.problem = facts.problem_state = None
            facts.gave_up = ()
        self._refresh(app)

    def set_problem(self, app: str, state: AppRunState, problem: str) -> None:
        """Record why the app is not running (failed readiness, gave up while starting)."""
        facts = self._facts.setdefault(app, _AppFacts())
        facts.problem_state, facts.problem = state, problem
        self._refresh(app)

    def set_holding(self, app: str, holding: bool) -> None:
        """A no-overlap deploy runs (or ended): requests should wait for its route."""
        facts = self._facts.setdefault(app, _AppFacts())
        if facts.holding != holding:
            facts.holding = holding
            self._refresh(app)

    def clear_problem(self, app: str) -> None:
        facts = self._facts.get(app)
        if facts is not None and facts.problem is not None:
            facts.problem = facts.problem_state = None
            self._refresh(app)

    def forget(self, app: str) -> None:
        """The app was destroyed: drop its facts (its units disappear through the watcher)."""
        facts = self._facts.pop(app, None)
        if facts is not None:
            for unit in facts.units:
                self._units.pop(unit, None)
        self._refresh(app)

    # -- deriving ------------------------------------------------------------------------

    def _refresh(self, app: str) -> None:
        facts = self._facts.get(app)
        old = self._views.get(app)
        new: AppView | None = derive_view(app, facts.routes if facts else (),
                          [self._units[u] for u in sorted(facts.units)] if facts else [],
                          facts.problem_state if facts else None,
                          facts.problem if facts else None)
        if new is not None and facts is not None and (facts.holding or facts.gave_up):
            new = replace(new, holding=facts.holding, gave_up=facts.gave_up)
        if (facts is not None and not facts.units and not facts.routes and not facts.problem
                and not facts.holding):
            self._facts.pop(app, None)
            new = None
        if new is None:
            self._views.pop(app, None)
        else:
            self._views[app] = new
        if old != new:
            self._emit(AppStateChanged(old, new))

    def _emit(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:  # one broken reader must not starve the others
                log.exception("state listener failed")
        self._changed.set()
        self._changed = asyncio.Event()


def is_up(state: UnitState) -> bool:
    return state.active_state in (ActiveState.ACTIVE, ActiveState.ACTIVATING,
                                  ActiveState.RELOADING)


def route_order(route: Route) -> tuple[bool, str, int, str]:
    """Web first, then by process name and instance number."""
    _, _, number = route.instance.rpartition("_")
    return (route.process != "web", route.process,
            int(number) if "_" in route.instance and number.isdigit() else 1, route.unit)


def derive_view(app: str, routes: tuple[Route, ...] | Route | None, units: list[UnitState],
                problem_state: AppRunState | None, problem: str | None) -> AppView:
    """Pure: the app's view from its units, its live instances and the hub's last problem.

    ``route`` is the first web instance that is active (else the first web instance); the
    app is RUNNING while any live instance is active.
    """
    if isinstance(routes, Route):
        routes = (routes,)
    routes = tuple(sorted(routes or (), key=route_order))
    by_name = {u.name: u for u in units}
    live_units = [by_name[r.unit] for r in routes if r.unit in by_name]
    live_names = {u.name for u in live_units}
    # A web instance serves unless systemd says it is down: one the watcher has not reported
    # yet was just found ready by the hub; one restarting after a crash is out until it runs
    # again (a refused connection then goes to another instance).
    serving = tuple(r for r in routes if r.web and (
        r.unit not in by_name or (is_up(by_name[r.unit])
                                  and by_name[r.unit].sub_state != SubState.AUTO_RESTART)))
    webs = [r for r in routes if r.web]
    route = serving[0] if serving else (webs[0] if webs else None)
    primary = route or (routes[0] if routes else None)
    live = by_name.get(primary.unit) if primary else None
    if live is not None and live.active_state != ActiveState.ACTIVE:
        live = next((u for u in live_units if u.active_state == ActiveState.ACTIVE), live)
    others_up = [u for u in units if is_up(u) and u.name not in live_names]
    base = AppView(app=app, state=AppRunState.STOPPED, route=route,
                   units=tuple(u.name for u in units), deploying=bool(live and others_up),
                   instances=routes, serving=serving)
    if live is not None and live.active_state == ActiveState.ACTIVE:
        return replace(base, state=AppRunState.RUNNING, main_pid=live.main_pid,
                       n_restarts=live.n_restarts, active_since=live.active_enter_timestamp)
    # A crash under Restart=on-failure reads "failed" and then "activating/auto-restart" in
    # the same millisecond (systemd 252): a failed unit that is still loaded is restarting.
    # Giving up is known only when systemd collects it (CollectMode=inactive-or-failed),
    # which _set_unit records as the CRASH_LOOPING problem.
    if live is not None and (live.sub_state == SubState.AUTO_RESTART
                             or live.active_state == ActiveState.FAILED):
        return replace(base, state=AppRunState.RESTARTING, n_restarts=live.n_restarts,
                       problem=describe_unit_exit(live))
    if others_up or (live is not None and is_up(live)):
        return replace(base, state=AppRunState.STARTING)
    if problem_state is not None:
        return replace(base, state=problem_state, problem=problem)
    return base
