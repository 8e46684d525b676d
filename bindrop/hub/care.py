"""Server care through the hub: backups, verifies, restores and gc as runs of care units.

A run is one request (a backup of the server or one app, a verify, a restore of one app, a
gc): the hub starts one oneshot transient unit per step (``bindrop.units.care``) over D-Bus
and waits for its start job, which ends when the step's process has. Runs that change backups
or data go one at a time: a second request while one runs fails with ``Conflict`` (409)
unless it asks to queue. The process reports progress and its result here
(``report``); the run's outcome is the unit's result plus those reports. Runs are run-state:
in memory only, the newest kept; what happened is recorded as events.

Disk measurements are runs too, but never exclusive (they only read).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bindrop.errors import (
    BackupFailed,
    BindropError,
    Conflict,
    DamagedBackup,
    InvalidInput,
    JobFailed,
    NotFound,
)
from bindrop.settings import Settings
from bindrop.systemd import Manager
from bindrop.units.care import CARE_UNIT_PREFIX, build_care_unit

log = logging.getLogger(__name__)

KEEP = 100
#: How long a stopping hub waits for care runs in progress.
CLOSE_WAIT_S = 20.0
#: Where DynamicUser apps' StateDirectory= lands, whatever bindrop's root.
APPS_DATA = "/var/lib/private/bindrop/apps"
#: Kinds of runs that stop the hub themselves: not waited for when it stops.
OUTLIVE_HUB = frozenset({"server-restore"})
#: Kinds of runs that only read: never exclusive.
SHARED = frozenset({"disk", "disk-check"})
_ERRORS: Mapping[str, type[BindropError]] = {
    "damaged_backup": DamagedBackup, "not_found": NotFound, "invalid_input": InvalidInput,
    "conflict": Conflict,
}


def error_of(error: Mapping[str, str] | None, default: str) -> BindropError:
    """The error a care unit reported (``{"code", "message"}``) as one of ours: the same
    status for the API's caller; ``BackupFailed`` for a code without its own class."""
    error = error or {}
    cls = _ERRORS.get(error.get("code", ""), BackupFailed)
    return cls(error.get("message") or default)


@dataclass
class CareRun:
    """One request and its steps; ``to_dict`` is what the API shows."""

    id: str
    kind: str
    app: str | None = None
    backup: str | None = None
    state: str = "queued"
    progress: str = ""
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    units: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=lambda: _now())
    finished_at: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "app": self.app, "backup": self.backup,
                "state": self.state, "progress": self.progress, "result": self.result,
                "error": self.error, "units": list(self.units), "created_at": self.created_at,
                "finished_at": self.finished_at}


@dataclass
class _Step:
    run: CareRun
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None


Body = Callable[[CareRun], Awaitable[dict[str, Any]]]
Finished = Callable[[CareRun], None]


class CareRuns:
    """The hub's care runs. ``environ``: ``BINDROP_*`` care settings the units get (the hub's
    own environment on a server: ``BINDROP_BACKUP_DIR``, ``BINDROP_S3_*``, …)."""

    def __init__(self, settings: Settings, manager: Manager,
                 environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.manager = manager
        self.environ = dict(environ or {})
        self._runs: OrderedDict[str, CareRun] = OrderedDict()
        self._steps: dict[str, _Step] = {}
        # Unit names stay unique across hub restarts: a step of an earlier hub may still run.
        self._ids = itertools.count(int(time.time() * 10) % 10**11)
        self._current: CareRun | None = None
        self._tasks: dict[asyncio.Task[Any], CareRun] = {}
        self._finished: list[Finished] = []

    # -- runs ------------------------------------------------------------------------------

    def on_finished(self, listener: Finished) -> None:
        """Call ``listener(run)`` when any run ends (the hub records events from it)."""
        self._finished.append(listener)

    @property
    def current(self) -> CareRun | None:
        return self._current

    def get(self, run_id: str) -> CareRun:
        run = self._runs.get(run_id)
        if run is None:
            raise NotFound(f"no care run {run_id!r}: it never existed or ended long ago "
                           "(`journalctl BINDROP_CARE_RUN=…` still has its output)")
        return run

    def list(self) -> list[CareRun]:
        """Newest first."""
        return list(reversed(self._runs.values()))

    async def begin(self, kind: str, *, app: str | None = None, backup: str | None = None,
                    queue: bool = False) -> CareRun:
        """A new run, holding the one-at-a-time slot (unless ``kind`` only reads).

        ``Conflict`` when another run holds it, or with ``queue`` wait for it to end."""
        run = CareRun(str(next(self._ids)), kind, app, backup)
        if kind not in SHARED:
            while self._current is not None:
                busy = self._current
                if not queue:
                    raise Conflict(
                        f"a {busy.kind} is running (run {busy.id}"
                        + (f", {busy.units[-1]}" if busy.units else "")
                        + "); one backup, verify, restore or gc runs at a time: try again "
                        "when it ends, or queue behind it (--wait)")
                await busy.done.wait()
            self._current = run
            try:
                await self._check_no_leftover_unit()
            except BaseException:
                self._current = None
                raise
        self._runs[run.id] = run
        while len(self._runs) > KEEP:
            oldest = next((r for r in self._runs.values() if r.done.is_set()), None)
            if oldest is None:
                break
            del self._runs[oldest.id]
        return run

    async def _check_no_leftover_unit(self) -> None:
        # A step started by a hub that restarted meanwhile may still run.
        units = await self.manager.list_units(f"{CARE_UNIT_PREFIX}*",
                                              states=("active", "activating"))
        busy = [u.name for u in units if not u.name.startswith(
            tuple(f"{CARE_UNIT_PREFIX}{k}-" for k in SHARED))]
        if busy:
            raise Conflict(f"{busy[0]} is still running (started before the hub restarted); "
                           f"try again when it ends (`systemctl status {busy[0]}`)")

    def execute(self, run: CareRun, body: Body) -> asyncio.Task[None]:
        """Run ``body(run)`` in the background; its dict is the run's result."""
        run.state = "running"

        async def go() -> None:
            try:
                run.result = await body(run)
                run.state = "succeeded"
            except BindropError as exc:
                run.state, run.error = "failed", exc.to_dict()["error"]
            except asyncio.CancelledError:
                run.state = "failed"
                run.error = {"code": "cancelled", "message": "the hub stopped during the run"}
                raise
            except Exception:
                log.exception("care run %s (%s) failed", run.id, run.kind)
                run.state = "failed"
                run.error = {"code": "internal_error",
                             "message": "the run failed unexpectedly; see the hub's log"}
            finally:
                run.finished_at = _now()
                if self._current is run:
                    self._current = None
                run.done.set()
                for listener in list(self._finished):
                    try:
                        listener(run)
                    except Exception:
                        log.exception("a care-run listener failed")

        task = asyncio.ensure_future(go())
        self._tasks[task] = run
        task.add_done_callback(lambda t: self._tasks.pop(t, None))
        return task

    async def wait(self, run: CareRun) -> CareRun:
        await run.done.wait()
        return run

    async def close(self, wait: float = CLOSE_WAIT_S) -> None:
        """Let runs in progress end (up to ``wait`` seconds), so their outcome is recorded;
        then stop waiting. A unit still running then goes on in systemd to its end."""
        # A server restore is what stops this hub: it goes on without it.
        tasks = [t for t, run in self._tasks.items() if run.kind not in OUTLIVE_HUB]
        if tasks:
            await asyncio.wait(tasks, timeout=wait)
        for task in list(self._tasks):
            task.cancel()

    # -- steps -----------------------------------------------------------------------------

    def unit_environment(self) -> dict[str, str]:
        settings = self.settings
        return {"BINDROP_APPS_DATA": APPS_DATA, **self.environ,
                "BINDROP_ROOT": str(settings.root),
                "BINDROP_SERVER": f"unix:{settings.control_socket}"}

    async def step(self, run: CareRun, kind: str, args: Sequence[str] = ()) -> dict[str, Any]:
        """Start the care unit ``kind ARGS`` for ``run`` and wait until it ended; its reported
        result, or its reported error raised (``BackupFailed`` when it reported none)."""
        step_id = str(next(self._ids))
        spec = build_care_unit(kind, step_id, sys.executable, args, self.unit_environment())
        step = self._steps[step_id] = _Step(run)
        run.units.append(spec.name)
        try:
            try:
                await self.manager.start_transient_unit(spec.name, spec.properties)
            except JobFailed as exc:
                if step.error is not None:
                    raise error_of(step.error, exc.message) from None
                raise BackupFailed(f"{spec.name} failed: {exc.message}; see `journalctl -u "
                                   f"{spec.name}`") from None
        finally:
            del self._steps[step_id]
        return step.result or {}

    def report(self, step_id: str, body: Mapping[str, Any]) -> None:
        """What a care unit's process says: ``progress`` text, its ``result`` or ``error``."""
        step = self._steps.get(step_id)
        if step is None:
            raise NotFound(f"no care step {step_id!r} is running")
        progress, result, error = body.get("progress"), body.get("result"), body.get("error")
        if isinstance(progress, str):
            step.run.progress = progress[:500]
        if isinstance(result, dict):
            step.result = result
        if isinstance(error, dict):
            step.error = {"code": str(error.get("code", "error")),
                          "message": str(error.get("message", ""))}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
