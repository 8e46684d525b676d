"""What a person, the dashboard or a timer asks of server care, as runs of care units.

Each ``start_*`` takes the one-at-a-time slot (``Conflict`` while another run holds it, or
queued behind it), starts the run in the background and returns it at once; the caller
awaits ``CareRuns.wait`` if it wants the outcome. The outcome of every run is recorded as an
event (``backup_succeeded``, ``backup_failed``, ``backup_restored``, ``restore_failed``,
``gc_finished``, ``disk_over_threshold`` / ``disk_back_under`` on a change only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from bindrop.domain.names import validate_app_name
from bindrop.domain.sizes import format_bytes
from bindrop.errors import BindropError
from bindrop.hub.care import CareRun, CareRuns, error_of
from bindrop.hub.commands import Command, Restore
from bindrop.hub.lifecycle import Outcome
from bindrop.store import Store

DISK_KINDS = ("disk_over_threshold", "disk_back_under")


class CareActions:
    """``call`` queues a command for an app's actor and waits for its outcome (``Hub.call``)."""

    def __init__(self, store: Store, runs: CareRuns,
                 call: Callable[[str, Command], Awaitable[Outcome]]) -> None:
        self.store = store
        self.runs = runs
        self.call = call
        runs.on_finished(self._record)

    async def start_backup(self, app: str | None, *, queue: bool = False) -> CareRun:
        if app is not None:
            self.store.get_app(validate_app_name(app))  # NotFound before a unit starts
        run = await self.runs.begin("backup", app=app, queue=queue)
        self.runs.execute(run, lambda r: self.runs.step(r, "backup", [app] if app else []))
        return run

    async def start_verify(self, backup_id: str, *, queue: bool = False) -> CareRun:
        run = await self.runs.begin("verify", backup=backup_id, queue=queue)
        self.runs.execute(run, lambda r: self.runs.step(r, "verify", [backup_id]))
        return run

    async def start_gc(self, *, dry_run: bool = False, queue: bool = False) -> CareRun:
        run = await self.runs.begin("gc-dry-run" if dry_run else "gc", queue=queue)
        self.runs.execute(run, lambda r: self.runs.step(
            r, "gc", ["--dry-run"] if dry_run else []))
        return run

    async def start_restore(self, app: str, backup_id: str | None, *,
                            queue: bool = False) -> CareRun:
        """Restore ``app``'s data through its actor: it waits its turn behind a deploy."""
        self.store.get_app(validate_app_name(app))
        run = await self.runs.begin("restore", app=app, backup=backup_id, queue=queue)

        async def body(r: CareRun) -> dict[str, Any]:
            outcome = await self.call(app, Restore(backup_id, _Steps(self.runs, r, app,
                                                                      backup_id)))
            return {**outcome.to_dict(), "backup": r.backup, "started": outcome.unit is not None}

        self.runs.execute(run, body)
        return run

    async def start_server_restore(self, backup_id: str | None, *,
                                   queue: bool = False) -> CareRun:
        """Restore bindrop's own database (the newest server backup's, or ``backup_id``'s):
        a unit checks it, stops this hub, swaps the database in and starts the hub again,
        which records ``server_restored``. This hub's run never sees its end."""
        run = await self.runs.begin("server-restore", backup=backup_id, queue=queue)
        self.runs.execute(run, lambda r: self.runs.step(
            r, "server-restore", ["--run", r.id, *([backup_id] if backup_id else [])]))
        return run

    async def disk(self) -> dict[str, Any]:
        """Measure now (a unit on the server); the report."""
        run = await self.runs.begin("disk")
        self.runs.execute(run, lambda r: self.runs.step(r, "disk"))
        return _outcome(await self.runs.wait(run))

    async def disk_check(self, threshold: str | None = None) -> dict[str, Any]:
        """Record a usage sample (what bindrop-disk.timer asks every 15 minutes); an event
        when a filesystem went over the threshold or back under it."""
        run = await self.runs.begin("disk-check")
        self.runs.execute(run, lambda r: self.runs.step(
            r, "disk-check", ["--threshold", threshold] if threshold else []))
        return _outcome(await self.runs.wait(run))

    # -- outcomes as events -----------------------------------------------------------------

    def _record(self, run: CareRun) -> None:
        store = self.store
        ok = run.state == "succeeded"
        result = run.result or {}
        message = (run.error or {}).get("message", "")
        try:
            if run.kind == "backup":
                if ok:
                    store.add_event("backup_succeeded", run.app,
                                    f"backup {result.get('id')} made "
                                    f"({format_bytes(int(result.get('size') or 0), 'exact')}"
                                    f"{', uploaded' if result.get('uploaded') else ''})",
                                    {**result, "run": run.id})
                else:
                    store.add_event("backup_failed", run.app, message, {"run": run.id})
            elif run.kind == "restore":
                if ok:
                    store.add_event("backup_restored", run.app, str(result.get("message")),
                                    {"backup": result.get("backup"), "run": run.id})
                else:
                    store.add_event("restore_failed", run.app, message,
                                    {"backup": run.backup, "run": run.id})
            elif run.kind == "gc" and ok:
                freed = format_bytes(int(result.get("total_bytes") or 0), "exact")
                store.add_event("gc_finished", None,
                                f"gc freed {freed}: {result.get('blobs')} blobs, "
                                f"{len(result.get('backups') or [])} backups", result)
            elif run.kind == "disk-check" and ok:
                self._record_disk(result)
        except BindropError:  # an app destroyed meanwhile
            return

    def _record_disk(self, result: dict[str, Any]) -> None:
        store = self.store
        last = store.last_event_of(DISK_KINDS)
        was_over = last is not None and last.kind == "disk_over_threshold"
        over = [f for f in result.get("filesystems", []) if f.get("mount") in result["over"]]
        limit = result.get("threshold")
        if over and not was_over:
            worst = max(over, key=lambda f: f.get("percent", 0))
            store.add_event("disk_over_threshold",
                            None, f"{worst['mount']} is {worst['percent']:.0f} % full "
                            f"(threshold {limit:g} %); `bindrop gc` frees old blobs and backups",
                            {"threshold": limit, "filesystems": over})
        elif not over and was_over:
            store.add_event("disk_back_under", None,
                            f"disk usage is under {limit:g} % again", {"threshold": limit})


class _Steps:
    """A restore's file steps, each a care unit of ``run``."""

    def __init__(self, runs: CareRuns, run: CareRun, app: str, backup: str | None) -> None:
        self.runs, self.run, self.app, self.backup = runs, run, app, backup

    async def prepare(self) -> dict[str, Any]:
        self.run.progress = "waiting for nothing else to run on the app, then checking"
        args = [self.app, *(["--from", self.backup] if self.backup else [])]
        prepared = await self.runs.step(self.run, "restore-prepare", args)
        self.run.backup = str(prepared.get("backup") or self.backup)
        return prepared

    async def swap(self, prepared: dict[str, Any]) -> dict[str, Any]:
        return await self.runs.step(self.run, "restore-swap", [
            self.app, str(prepared["backup"]), *map(str, prepared.get("databases") or [])])

    async def discard(self) -> None:
        with contextlib.suppress(BindropError):
            await self.runs.step(self.run, "restore-discard", [self.app])


def _outcome(run: CareRun) -> dict[str, Any]:
    if run.state != "succeeded":
        raise error_of(run.error, f"the {run.kind} run failed")
    return run.result or {}
