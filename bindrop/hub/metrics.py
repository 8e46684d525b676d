"""The hub's traffic and resource history: what proxies report and what systemd accounts.

Proxies report traffic deltas (``record_traffic``); every ``step`` seconds (10) the sampler
reads memory, CPU and tasks of every app's running units from systemd (once for everybody,
never per open page) and closes a ``Point`` per app. The last hour of points stays in memory;
each finished minute is written to SQLite (``bindrop.store.metrics``) and minutes older than
``retention`` (7 days) are pruned. Totals since the hub started, per app and release, feed
``/metrics`` (Prometheus counters may restart at zero).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bindrop.errors import BindropError
from bindrop.hub.pubsub import AppDestroyed, PubSub
from bindrop.hub.state import StateStore, is_up
from bindrop.hub.traffic import Point, Traffic, downsample, merge_points
from bindrop.store import Store
from bindrop.systemd import Manager

log = logging.getLogger(__name__)

STEP = 10
MINUTE = 60
MEMORY_KEPT = 3600  # seconds of 10 s points kept in memory
RETENTION = 7 * 24 * 3600
#: A release that has had no request for this long leaves /metrics (else every release
#: ever deployed would stay a series there).
TOTALS_KEPT = 3600


@dataclass(frozen=True)
class Resources:
    """An app's units now: memory and tasks summed; CPU used since the hub started."""

    memory: int | None
    tasks: int | None
    cpu_seconds: float


class Metrics:
    def __init__(self, state: StateStore, store: Store, manager: Manager, events: PubSub, *,
                 step: int = STEP, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.store = store
        self.manager = manager
        #: A destroyed app's history is forgotten (``AppDestroyed``).
        self.events = events
        self.step = step
        self.clock = clock
        #: Traffic since the hub started, per (app, release).
        self.totals: dict[tuple[str, str], Traffic] = {}
        self._pending: dict[str, Traffic] = {}
        self._points: dict[str, deque[Point]] = {}
        self._cpu_seen: dict[str, int] = {}  # unit -> CPUUsageNSec at the last sample
        self._cpu_total: dict[str, int] = {}  # app -> ns since the hub started
        self._now: dict[str, Point] = {}  # app -> its last point (memory, tasks now)
        # Restarts systemd made by itself (a crash and Restart=): no event records them, so
        # the graphs' marks for them are kept here, for as long as the points are.
        self._restarts_seen: dict[str, int] = {}
        self._crashes: dict[str, deque[dict[str, Any]]] = {}
        self._last_end: int | None = None
        self._last_seen: dict[tuple[str, str], int] = {}  # (app, release) -> last traffic
        self._fresh: set[tuple[str, str]] = set()  # with traffic since the last sample
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # -- life ----------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())
        self._unsubscribe = self.events.subscribe(AppDestroyed, self._on_destroyed)

    def _on_destroyed(self, event: AppDestroyed) -> None:
        self.forget(event.app)

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            now = self.clock()
            await asyncio.sleep(self.step - now % self.step)
            try:
                await self.sample(int(self.clock()) // self.step * self.step)
            except Exception:  # one bad sample must not end the history
                log.exception("metrics: sampling failed")

    # -- input ---------------------------------------------------------------------------

    def record_traffic(self, entries: list[tuple[str, str, Traffic]]) -> None:
        for app, release, traffic in entries:
            total = self.totals.get((app, release))
            if total is None:
                total = self.totals[(app, release)] = Traffic()
            total.add(traffic)
            self._fresh.add((app, release))
            pending = self._pending.get(app)
            if pending is None:
                pending = self._pending[app] = Traffic()
            pending.add(traffic)

    async def sample(self, end: int) -> None:
        """Close the step that ends at ``end`` (unix seconds): one point per app with traffic
        or running units; write finished minutes to SQLite."""
        start = end - self.step
        pending, self._pending = self._pending, {}
        fresh, self._fresh = self._fresh, set()
        for key in fresh:
            self._last_seen[key] = end
        apps = self.state.snapshot().apps
        for app in sorted(set(pending) | set(apps)):
            view = apps.get(app)
            if view is not None:
                self._note_restarts(app, view.n_restarts, end)
            point = Point(start, self.step, pending.get(app) or Traffic())
            await self._read_resources(app, point)
            if app not in pending and point.memory is None and not point.cpu_ns:
                continue  # nothing runs and nothing was asked: no point
            self._now[app] = point
            points = self._points.get(app)
            if points is None:
                points = self._points[app] = deque(maxlen=MEMORY_KEPT // self.step)
            points.append(point)
        # Every minute that ended since the last sample (a busy hub may miss a step).
        first = end if self._last_end is None else self._last_end + 1
        self._last_end = end
        for boundary in range(first + (-first) % MINUTE, end + 1, MINUTE):
            self._write_minute(boundary - MINUTE)
            self._drop_quiet_releases(boundary, {a: v.live_release for a, v in apps.items()})

    def _drop_quiet_releases(self, now: int, live: dict[str, str | None]) -> None:
        for key, seen in list(self._last_seen.items()):
            if now - seen >= TOTALS_KEPT and live.get(key[0]) != key[1]:
                del self._last_seen[key]
                self.totals.pop(key, None)

    def _note_restarts(self, app: str, n_restarts: int, t: int) -> None:
        before = self._restarts_seen.get(app)
        self._restarts_seen[app] = n_restarts
        if before is not None and n_restarts > before:
            crashes = self._crashes.get(app)
            if crashes is None:
                crashes = self._crashes[app] = deque(maxlen=100)
            crashes.append({"t": t, "kind": "crash_restarted",
                            "message": f"systemd restarted {app} after it exited "
                                       f"({n_restarts} restarts of this unit)"})

    def crashes(self, app: str, since: int, until: int) -> list[dict[str, Any]]:
        """Restarts systemd made of ``app`` in [since, until) while this hub watched."""
        return [c for c in self._crashes.get(app, ()) if since <= c["t"] < until]

    async def _read_resources(self, app: str, point: Point) -> None:
        for unit in self.state.units_of(app):
            if not is_up(unit):
                self._cpu_seen.pop(unit.name, None)
                continue
            try:
                read = await self.manager.read_unit_metrics(unit.name)
            except BindropError:  # gone meanwhile
                continue
            if read.memory_current is not None:
                point.memory = (point.memory or 0) + read.memory_current
            if read.tasks_current is not None:
                point.tasks = (point.tasks or 0) + read.tasks_current
            if read.cpu_usage_nsec is not None:
                before = self._cpu_seen.get(unit.name, 0)
                used = read.cpu_usage_nsec - before if read.cpu_usage_nsec >= before \
                    else read.cpu_usage_nsec
                self._cpu_seen[unit.name] = read.cpu_usage_nsec
                point.cpu_ns += used
        if point.cpu_ns:
            self._cpu_total[app] = self._cpu_total.get(app, 0) + point.cpu_ns

    def _write_minute(self, minute: int) -> None:
        rows = []
        for app, points in self._points.items():
            inside = [p for p in points if minute <= p.t < minute + MINUTE]
            if not inside:
                continue
            merged = merge_points(inside, minute, MINUTE)
            rows.append({"app": app, "t": minute, **merged.traffic.to_dict(),
                         "memory": merged.memory, "cpu_ns": merged.cpu_ns,
                         "tasks": merged.tasks})
        try:
            self.store.write_metric_minutes(rows)
            if minute % 3600 == 0:
                self.store.prune_metric_minutes(minute - RETENTION)
        except BindropError as exc:
            log.warning("metrics: could not write minute %d: %s", minute, exc.message)

    # -- output --------------------------------------------------------------------------

    def series(self, app: str, since: int, until: int, step: int) -> list[Point]:
        """Points of ``app`` in steps of ``step`` seconds over [since, until): from memory
        when the span is within the last hour and the step finer than a minute, else from
        the minutes in SQLite (with the minute in progress from memory).

        When memory starts later than ``since`` (the hub restarted) but SQLite has minutes
        before that, the answer is in whole minutes: the points' own ``t`` and ``step`` say
        which span and step were used."""
        points: list[Point]
        kept = self._points.get(app, deque())
        fine = step < MINUTE and since >= until - MEMORY_KEPT
        # Memory's first minute may already be in SQLite too (written when it ended): only
        # minutes before it are history that memory lacks.
        first = kept[0].t - kept[0].t % MINUTE if kept else until
        if fine and first > since and self.store.read_metric_minutes(
                app, since - since % MINUTE, first):
            fine = False
            step = max(MINUTE, step // MINUTE * MINUTE)
            since -= since % step
        if fine:
            points = list(kept)
        else:
            points = [_point_from_row(r) for r in
                      self.store.read_metric_minutes(app, since - since % MINUTE, until)]
            last = points[-1].t + MINUTE if points else since - since % MINUTE
            points += [p for p in kept if p.t >= last]
        return downsample(points, since, until, step)

    def resources(self, app: str) -> Resources:
        point = self._now.get(app)
        return Resources(point.memory if point else None, point.tasks if point else None,
                         self._cpu_total.get(app, 0) / 1e9)

    def apps(self) -> list[str]:
        """Apps with any traffic or resource figure since the hub started."""
        return sorted({a for a, _ in self.totals} | set(self._now))

    def forget(self, app: str) -> None:
        """Drop the history of ``app`` (it was destroyed), in memory and in SQLite."""
        self.store.delete_metric_minutes(app)
        self._points.pop(app, None)
        self._pending.pop(app, None)
        self._now.pop(app, None)
        self._cpu_total.pop(app, None)
        self._restarts_seen.pop(app, None)
        self._crashes.pop(app, None)
        for key in [k for k in self.totals if k[0] == app]:
            del self.totals[key]
            self._last_seen.pop(key, None)


def _point_from_row(row: dict[str, Any]) -> Point:
    traffic = Traffic(row["requests"], row["classes"], row["gateway"], row["bytes_in"],
                      row["bytes_out"], row["latency_sum"], row["latency"])
    return Point(row["t"], MINUTE, traffic, row["memory"], row["cpu_ns"], row["tasks"])
