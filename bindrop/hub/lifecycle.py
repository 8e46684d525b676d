"""What each command does to one app: the body of its actor.

Deploy is wait -> swap -> drain: start the new release as its own unit on a fresh port, wait
until it is ready, flip the route, let the old release drain, stop it, and only then
return. A release that never gets ready is stopped and the old one keeps serving.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bindrop.errors import BindropError, InvalidInput, JobFailed, NotFound, NotReady
from bindrop.hub.actor import Actor
from bindrop.hub.commands import Check, Command, Deploy, Restart, Rollback, Start, Stop
from bindrop.hub.health import HealthCheck, probe, wait_until_ready
from bindrop.hub.logs import JournalReader
from bindrop.hub.plan import next_instance
from bindrop.hub.ports import PortPool
from bindrop.hub.router import Router
from bindrop.hub.state import AppRunState, Route, StateStore, describe_exit, is_up
from bindrop.hub.system import system_read_only_paths
from bindrop.settings import Settings
from bindrop.store import (
    AppConfig,
    BlobStore,
    Release,
    Store,
    bundles_dir,
    gc_bundles,
    unpack_bundle,
)
from bindrop.systemd import ActiveState, Manager, SubState
from bindrop.units import (
    AppSpec,
    ReleaseSpec,
    app_unit_name,
    build_app_unit,
    parse_app_unit_name,
)

log = logging.getLogger(__name__)

LOG_LINES = 20


@dataclass(frozen=True)
class Outcome:
    """What a command did, for the caller (the API returns it as JSON)."""

    app: str
    action: str
    release: str | None = None
    unit: str | None = None
    port: int | None = None
    stopped: tuple[str, ...] = ()
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "action": self.action, "release": self.release,
                "unit": self.unit, "port": self.port, "stopped": list(self.stopped),
                "message": self.message}


class AppLifecycle:
    """Carries out one app's commands. Only its actor calls ``handle``."""

    def __init__(self, app: str, *, settings: Settings, store: Store, blobs: BlobStore,
                 manager: Manager, state: StateStore, ports: PortPool, router: Router,
                 journal: JournalReader, actor: Callable[[], Actor]) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.manager = manager
        self.state = state
        self.ports = ports
        self.router = router
        self.journal = journal
        self._actor = actor

    async def handle(self, command: Command) -> Outcome:
        if isinstance(command, Deploy):
            return await self._deploy(self._release(int_release(command.release)), "deploy")
        if isinstance(command, Rollback):
            return await self._deploy(self._rollback_target(command.to), "rollback")
        if isinstance(command, Restart):
            return await self._deploy(self._current_release(), "restart")
        if isinstance(command, Start):
            return await self._start()
        if isinstance(command, Stop):
            return await self._stop()
        if isinstance(command, Check):
            return await self._check()
        raise InvalidInput(f"unknown command {command!r}")

    # -- commands ------------------------------------------------------------------------

    async def _start(self) -> Outcome:
        config = self.store.get_app(self.app)
        if config.desired_state != "running":
            config = self.store.update_app(self.app, desired_state="running")
        view = self.state.app(self.app)
        if view is not None and view.route is not None and view.state in (
                AppRunState.RUNNING, AppRunState.RESTARTING):
            return Outcome(self.app, "start", view.live_release, view.route.unit,
                           view.route.port, message=f"{self.app} is already running")
        self.state.clear_problem(self.app)
        return await self._deploy(self._current_release(config), "start")

    async def _stop(self) -> Outcome:
        config = self.store.get_app(self.app)
        if config.desired_state != "stopped":
            self.store.update_app(self.app, desired_state="stopped")
        await self.router.publish(self.app, None)
        stopped = await self._stop_units([u.name for u in self.state.units_of(self.app)])
        self.state.clear_problem(self.app)
        self.store.add_event("app_stopped", self.app, f"{self.app} stopped")
        return Outcome(self.app, "stop", stopped=tuple(stopped),
                       message=f"{self.app} is stopped")

    async def _check(self) -> Outcome:
        view = self.state.app(self.app)
        if view is None or view.route is None:
            return Outcome(self.app, "check", message=f"{self.app} is not running")
        config = self.store.get_app(self.app)
        result = await probe(HealthCheck(path=config.health_path), view.route.port)
        if not result.ok:
            raise NotReady(f"{self.app} failed its health check: {result.detail}")
        return Outcome(self.app, "check", view.live_release, view.route.unit, view.route.port,
                       message=result.detail)

    async def _deploy(self, release: Release, action: str) -> Outcome:
        config = self.store.get_app(self.app)
        old_units = [u.name for u in self.state.units_of(self.app) if is_up(u)]
        view = self.state.app(self.app)
        old_route = view.route if view is not None else None
        holding = config.no_overlap
        if holding:
            # The app cannot run two copies: stop the old one first. Proxies hold new requests
            # (bounded) until the new release is routed, instead of answering 503.
            self.state.set_holding(self.app, True)
        try:
            if holding:
                await self.router.publish(self.app, None)
                await self._stop_units(old_units)
                old_units, old_route = [], None
            try:
                route = await self._bring_up(config, release)
            except (NotReady, JobFailed) as exc:
                reason = exc.message
                # A failed restart of the release that still serves says nothing bad about
                # the release itself: it stays live (and a rollback target).
                if not (old_units and release.number == config.current_release):
                    self.store.set_release_status(self.app, release.number, "failed",
                                                  reason[:4000])
                self.store.add_event(f"{action}_failed", self.app, reason,
                                     {"release": release.number})
                if not old_units:  # nothing else serves: show why on the app
                    self.state.set_problem(self.app, AppRunState.FAILED_READINESS, reason)
                raise NotReady(reason) from None
            # Swap: from here on the new release serves.
            flip = time.monotonic()
            await self.router.publish(self.app, route)
            log.info("%s: route to %s published in %.0f ms", self.app, route.unit,
                     (time.monotonic() - flip) * 1000)
        finally:
            if holding:
                self.state.set_holding(self.app, False)
        self.store.update_app(self.app, current_release=release.number,
                              desired_state="running")
        self.store.set_release_status(self.app, release.number, "live")
        # Drain, then stop whatever ran before; deploy returns only when the old is gone.
        if old_route is not None and old_route.unit != route.unit:
            drain = time.monotonic()
            await self.router.drain(old_route, self.settings.drain_timeout)
            log.info("%s: %s drained in %.0f ms", self.app, old_route.unit,
                     (time.monotonic() - drain) * 1000)
        stopped = await self._stop_units([u for u in old_units if u != route.unit])
        self._collect_old_releases()
        self.store.add_event(f"{action}_succeeded", self.app,
                             f"release {release.number} of {self.app} is live",
                             {"release": release.number, "unit": route.unit})
        return Outcome(self.app, action, release.release_id, route.unit, route.port,
                       tuple(stopped), f"release {release.number} of {self.app} is live")

    # -- steps ---------------------------------------------------------------------------

    async def _bring_up(self, config: AppConfig, release: Release) -> Route:
        """Start ``release`` as a fresh unit and wait until it is ready; undo on failure."""
        instances = [p[1] for u in self.state.units_of(self.app)
                     if (p := parse_app_unit_name(u.name))]
        instance = next_instance(release.release_id, instances)
        if self.blobs.remote is not None and not self.blobs.exists(release.sha256):
            # Evicted by gc (the bucket has it): fetched back, its sha256 checked, first.
            await self.blobs.fetch(release.sha256)
        exec_path, args = self._executable(release)
        unit = app_unit_name(self.app, instance)
        port = self.ports.allocate(unit)
        spec = build_app_unit(
            AppSpec(self.app, self.store.get_env(self.app), config.limits, config.system,
                    system_read_only_paths() if config.system else ()),
            ReleaseSpec(instance, exec_path, args, port),
            self.settings,
        )
        started = time.monotonic()
        log.info("%s: starting %s on port %d", self.app, spec.name, port)
        try:
            await self.manager.start_transient_unit(spec.name, spec.properties)
        except JobFailed as exc:
            await self._stop_units([spec.name])
            raise NotReady(await self._with_logs(spec.name, exc.message)) from None
        except BaseException:
            self.ports.release(unit)
            raise
        check = HealthCheck(path=config.health_path, timeout=config.health_timeout_s)
        try:
            await self._actor().wait(wait_until_ready(
                check, port, gone=lambda: self._why_down(spec.name), changed=self.state.changed))
        except NotReady as exc:
            await self._stop_units([spec.name])
            raise NotReady(await self._with_logs(
                spec.name, f"release {release.number} of {self.app} did not get ready: "
                           f"{exc.message}")) from None
        except BaseException:  # Cancelled by a stop, or the hub is stopping
            await self._stop_units([spec.name])
            raise
        log.info("%s: %s ready in %.0f ms", self.app, spec.name,
                 (time.monotonic() - started) * 1000)
        return Route(spec.name, instance, port)

    def _why_down(self, unit: str) -> str | None:
        """Why a starting unit is no use any more (crashed, gave up, gone); None while fine."""
        state = self.state.unit(unit)
        if state is None:
            last = self.state.last_state(unit)
            return f"the unit {describe_exit(last)}" if last else None
        if state.active_state == ActiveState.FAILED or state.sub_state == SubState.AUTO_RESTART:
            return f"the unit {describe_exit(state)}"
        if state.active_state in (ActiveState.INACTIVE, ActiveState.DEACTIVATING):
            return f"the unit is {state.active_state}"
        return None

    async def _stop_units(self, units: list[str]) -> list[str]:
        stopped = []
        for unit in units:
            try:
                await self.manager.stop_unit(unit)
            except NotFound:  # already gone (collected after a failure)
                self.ports.release(unit)
                continue
            except BindropError as exc:
                log.warning("stopping %s: %s", unit, exc.message)
                continue
            finally:
                self.ports.release(unit)
            stopped.append(unit)
        return stopped

    def _collect_old_releases(self) -> None:
        """Forget releases beyond the newest ``releases_kept`` (never the live one), and
        delete the files no release uses any more."""
        old = self.store.releases_to_collect(self.app, self.settings.releases_kept)
        if not old:
            return
        unused = self.store.delete_releases(self.app, [r.number for r in old])
        for sha256 in unused:
            self.blobs.remove(sha256)
        if any(r.kind == "bundle" for r in old):
            gc_bundles(bundles_dir(self.settings), self.store.referenced_blobs())
        log.info("%s: collected releases %s", self.app, ", ".join(str(r.number) for r in old))

    async def _with_logs(self, unit: str, message: str) -> str:
        lines = await self.journal.tail(unit, LOG_LINES)
        if not lines:
            return message
        return message + "\nlast log lines:\n" + "\n".join(f"  {line}" for line in lines)

    # -- lookups -------------------------------------------------------------------------

    def _release(self, number: int) -> Release:
        return self.store.get_release(self.app, number)

    def _current_release(self, config: AppConfig | None = None) -> Release:
        config = config or self.store.get_app(self.app)
        if config.current_release is None:
            raise NotFound(f"{self.app} has no release yet: deploy one with "
                           f"`bindrop deploy {self.app} ./binary`")
        return self._release(config.current_release)

    def _rollback_target(self, to: str | None) -> Release:
        if to is not None:
            return self._release(int_release(to))
        config = self.store.get_app(self.app)
        current = config.current_release
        earlier = [r for r in self.store.list_releases(self.app)
                   if current is not None and r.number < current and r.status != "failed"]
        if not earlier:
            raise NotFound(f"{self.app} has no earlier release to roll back to; "
                           f"see `bindrop releases {self.app}`")
        return earlier[0]

    def _executable(self, release: Release) -> tuple[str, tuple[str, ...]]:
        blob = self.blobs.path(release.sha256)
        if not blob.exists():
            raise NotFound(f"the file of release {release.number} of {self.app} is missing "
                           "from the blob store; deploy it again")
        if release.kind == "bundle":
            root = unpack_bundle(blob, release.sha256, bundles_dir(self.settings))
            program = root / release.command[0]
            return str(program), tuple(release.command[1:])
        return str(blob), tuple(release.command)


def int_release(release: str) -> int:
    head = release.split(".", 1)[0]
    if not head.isdigit():
        raise InvalidInput(f"release {release!r} is not valid: use a release number such as 3")
    return int(head)
