"""Apps' scheduled jobs: each a transient timer + oneshot service, owned by the hub.

The store holds what the user wants (``cron_jobs``); systemd holds the timers. At start the
hub creates every job whose timer is missing (after a reboot, transient units are gone). After
a deploy or rollback the app's jobs are re-created to run the new current release; when an
app is destroyed its jobs' units go too (the rows go with the app). A job whose service is
running is never started again meanwhile: systemd skips a timer's start of an active service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from bindrop.errors import BindropError, Conflict, NotFound, UnitExists
from bindrop.hub.pubsub import AppDestroyed, PubSub, ReleaseChanged
from bindrop.hub.system import system_read_only_paths
from bindrop.settings import Settings
from bindrop.store import BlobStore, Store
from bindrop.store.bundles import bundles_dir, unpack_bundle
from bindrop.store.cron import CronJob
from bindrop.systemd import Manager
from bindrop.systemd.calendar import parse_calendar
from bindrop.systemd.types import ActiveState
from bindrop.units import AppSpec
from bindrop.units.cron import CRON_UNIT_PREFIX, build_cron_units, cron_unit_names

log = logging.getLogger(__name__)

# Stopping a transient timer lets systemd collect it and its service a moment later; a
# re-creation before that fails with UnitExists.
RECREATE_TRIES = 20
RECREATE_WAIT_S = 0.1


class CronJobs:
    """The apps' scheduled jobs. Only the hub creates one (``hub.cron``); it follows the hub's
    ``ReleaseChanged`` and ``AppDestroyed``."""

    def __init__(self, *, settings: Settings, store: Store, blobs: BlobStore,
                 manager: Manager, events: PubSub) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.manager = manager
        self.events = events
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe: list[Any] = []

    async def start(self) -> None:
        """Listen for deploys and destroys, then create every job whose timer is missing."""
        self._unsubscribe = [self.events.subscribe(ReleaseChanged, self._on_release),
                             self.events.subscribe(AppDestroyed, self._on_destroyed)]
        await self.reconcile()

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        for task in list(self._tasks):
            task.cancel()

    # -- commands ------------------------------------------------------------------------

    def jobs(self, app: str) -> list[CronJob]:
        self.store.get_app(app)
        return self.store.list_cron_jobs(app)

    async def add(self, app: str, name: str, schedule: str, args: list[str]) -> CronJob:
        """Record the job and create its timer; nothing is kept if the timer cannot start."""
        config = self.store.get_app(app)
        if config.current_release is None:
            raise Conflict(f"{app} has no release yet; deploy one before adding jobs")
        schedule = await asyncio.to_thread(parse_calendar, schedule)
        job = self.store.add_cron_job(app, name, schedule, args)
        try:
            await self._create(job)
        except BaseException:
            self.store.remove_cron_job(app, name)
            raise
        self.store.add_event("cron_job_added", app,
                             f"job {name} of {app} added: {schedule}",
                             {"job": name, "schedule": schedule})
        return job

    async def remove(self, app: str, name: str) -> CronJob:
        """Stop the job's timer (and a run in progress) and forget the job."""
        self.store.get_app(app)
        job = self.store.remove_cron_job(app, name)
        await self._stop_units(*cron_unit_names(app, name))
        self.store.add_event("cron_job_removed", app, f"job {name} of {app} removed",
                             {"job": name})
        return job

    # -- keeping systemd in line ---------------------------------------------------------

    async def reconcile(self) -> list[str]:
        """Create the timer of every job that has none; returns the jobs created."""
        created = []
        for job in self.store.list_cron_jobs():
            timer, _ = cron_unit_names(job.app, job.name)
            try:
                await self.manager.get_unit_path(timer)
                continue
            except NotFound:
                pass
            try:
                await self._create(job)
                created.append(f"{job.app}.{job.name}")
                log.info("cron: recreated %s", timer)
            except BindropError as exc:
                log.warning("cron: could not create %s: %s", timer, exc.message)
        return created

    async def refresh_app(self, app: str) -> None:
        """Re-create the app's jobs for its current release; a job running now keeps its
        timer (it picks the new release up at the next refresh or hub start)."""
        for job in self.store.list_cron_jobs(app):
            timer, service = cron_unit_names(app, job.name)
            if await self._is_active(service):
                log.info("cron: %s is running; it keeps the old release for now", service)
                continue
            await self._stop_units(timer, service)
            try:
                await self._create(job)
            except BindropError as exc:
                log.warning("cron: could not re-create %s: %s", timer, exc.message)

    async def _create(self, job: CronJob) -> None:
        config = self.store.get_app(job.app)
        if config.current_release is None:
            raise Conflict(f"{job.app} has no current release to run job {job.name}")
        release = self.store.get_release(job.app, config.current_release)
        exec_path = str(self.blobs.path(release.sha256))
        if release.kind == "bundle":
            root = unpack_bundle(self.blobs.path(release.sha256), release.sha256,
                                 bundles_dir(self.settings))
            exec_path = str(root / release.command[0])
        units = build_cron_units(
            AppSpec(job.app, self.store.get_env(job.app), config.limits, config.system,
                    system_read_only_paths() if config.system else ()),
            release.release_id, exec_path, job.args, job.name, job.schedule,
            self.settings)
        for attempt in range(RECREATE_TRIES):
            try:
                await self.manager.start_transient_unit(
                    units.timer.name, units.timer.properties,
                    aux=[(units.service.name, units.service.properties)])
                return
            except UnitExists:
                if attempt == RECREATE_TRIES - 1:
                    raise
                with contextlib.suppress(BindropError):
                    await self.manager.reset_failed_unit(units.service.name)
                await asyncio.sleep(RECREATE_WAIT_S)

    async def _is_active(self, unit: str) -> bool:
        try:
            listing = await self.manager.list_units(unit)
        except BindropError:
            return False
        return any(u.active_state in (ActiveState.ACTIVE, ActiveState.ACTIVATING,
                                      ActiveState.DEACTIVATING) for u in listing)

    async def _stop_units(self, *units: str) -> None:
        for unit in units:
            with contextlib.suppress(NotFound):
                await self.manager.stop_unit(unit)
            with contextlib.suppress(BindropError):
                await self.manager.reset_failed_unit(unit)

    async def _remove_units_of(self, app: str) -> None:
        units = await self.manager.list_units(f"{CRON_UNIT_PREFIX}{app}.*")
        await self._stop_units(*sorted((u.name for u in units),
                                       key=lambda n: not n.endswith(".timer")))

    def _on_release(self, event: ReleaseChanged) -> None:
        if self.store.list_cron_jobs(event.app):
            self._background(self.refresh_app(event.app))

    def _on_destroyed(self, event: AppDestroyed) -> None:
        self._background(self._remove_units_of(event.app))

    def _background(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.warning("cron: %s", t.exception())

        task.add_done_callback(done)
