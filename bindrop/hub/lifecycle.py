"""What each command does to one app: the body of its actor.

Deploy is wait -> swap -> drain: start the new release as its own unit on a fresh port, wait
until it is ready, flip the route, let the old release drain, stop it, and only then
return. A release that never gets ready is stopped and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bindrop.domain.limits import Limits
from bindrop.domain.processes import WEB, InstanceId, build_instance_id, parse_instance_token
from bindrop.errors import BindropError, InvalidInput, JobFailed, NotFound, NotReady
from bindrop.hub.actor import Actor
from bindrop.hub.commands import (
    Check,
    Command,
    Deploy,
    Restart,
    Restore,
    Rollback,
    Scale,
    Start,
    Stop,
)
from bindrop.hub.health import HealthCheck, probe, wait_until_ready
from bindrop.hub.logs import JournalReader
from bindrop.hub.plan import instance_generation, next_instance
from bindrop.hub.ports import PortPool
from bindrop.hub.pubsub import PubSub, ReleaseChanged
from bindrop.hub.router import RoutePublisher
from bindrop.hub.state import AppRunState, Route, StateStore, is_up
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
from bindrop.store.processes import ProcessConfig
from bindrop.systemd import ActiveState, Manager, SubState
from bindrop.systemd.jobs import describe_unit_exit
from bindrop.units import (
    AppSpec,
    ReleaseSpec,
    app_unit_name,
    build_app_unit,
    parse_app_unit_name,
)
from bindrop.units.tasks import build_release_task

log = logging.getLogger(__name__)

LOG_LINES = 20
#: The longest a stop, or a no-overlap deploy, waits for requests in flight to the old
#: instances (the drain timeout, if shorter). A no-overlap deploy's held visitors wait for the
#: drain, the stop and the new release's start, within the proxy's 30 s hold; and a
#: WebSocket or event stream keeps a drain waiting to its end.
QUICK_DRAIN_S = 5.0


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
    #: what the release command wrote (its last lines), when the deploy ran one
    release_log: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "action": self.action, "release": self.release,
                "unit": self.unit, "port": self.port, "stopped": list(self.stopped),
                "message": self.message, "release_log": list(self.release_log)}


class AppLifecycle:
    """Carries out one app's commands. Only its actor calls ``handle``."""

    def __init__(self, app: str, *, settings: Settings, store: Store, blobs: BlobStore,
                 manager: Manager, state: StateStore, ports: PortPool, router: RoutePublisher,
                 journal: JournalReader, events: PubSub, actor: Callable[[], Actor]) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.manager = manager
        self.state = state
        self.ports = ports
        self.router = router
        self.journal = journal
        self.events = events
        self._actor = actor

    async def handle(self, command: Command) -> Outcome:
        if isinstance(command, Deploy):
            return await self._deploy(self._release(command.release), "deploy",
                                      rolling=command.rolling)
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
        if isinstance(command, Restore):
            return await self._restore(command)
        if isinstance(command, Scale):
            return await self._scale()
        raise InvalidInput(f"unknown command {command!r}")

    # -- commands ------------------------------------------------------------------------

    async def _start(self) -> Outcome:
        config = self.store.get_app(self.app)
        if config.desired_state != "running":
            config = self.store.update_app(self.app, desired_state="running")
        view = self.state.app(self.app)
        if view is not None and view.instances and view.state in (
                AppRunState.RUNNING, AppRunState.RESTARTING):
            return Outcome(self.app, "start", view.live_release,
                           view.route.unit if view.route else None,
                           view.route.port if view.route else None,
                           message=f"{self.app} is already running")
        self.state.clear_problem(self.app)
        return await self._deploy(self._current_release(config), "start")

    async def _stop(self) -> Outcome:
        config = self.store.get_app(self.app)
        if config.desired_state != "stopped":
            self.store.update_app(self.app, desired_state="stopped")
        view = self.state.app(self.app)
        await self.router.publish(self.app, None)
        # Requests the app already took finish (bounded by the drain timeout) before it stops.
        await self._drain([r for r in (view.instances if view is not None else ()) if r.web],
                          QUICK_DRAIN_S)
        stopped = await self._stop_units([u.name for u in self.state.units_of(self.app)])
        self.state.clear_problem(self.app)
        self.store.add_event("app_stopped", self.app, f"{self.app} stopped")
        return Outcome(self.app, "stop", stopped=tuple(stopped),
                       message=f"{self.app} is stopped")

    async def _restore(self, command: Restore) -> Outcome:
        """Check the backup before anything of the app is touched, then stop, swap, start
        (only if it was running). A swap whose databases fail their check leaves it stopped."""
        was_running = self.store.get_app(self.app).desired_state == "running"
        prepared = await command.steps.prepare()
        try:
            await self._stop()
        except BaseException:
            await command.steps.discard()
            raise
        await command.steps.swap(prepared)
        started = await self._start() if was_running else None
        backup = prepared.get("backup", command.backup)
        return Outcome(self.app, "restore", started.release if started else None,
                       started.unit if started else None, started.port if started else None,
                       message=f"{self.app} restored from backup {backup}"
                       + ("" if was_running else " (left stopped)"))

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

    async def _deploy(self, release: Release, action: str, *, rolling: bool = False
                      ) -> Outcome:
        config = self.store.get_app(self.app)
        wanted = self._wanted(release)
        old_units = [u.name for u in self.state.units_of(self.app) if is_up(u)]
        view = self.state.app(self.app)
        old_routes = view.instances if view is not None else ()
        release_log: list[str] = []
        if action == "deploy" and release.release_command:
            # Before any new instance starts, and before a no-overlap deploy stops the old:
            # a failing release command leaves the old release serving.
            release_log = await self._release_command(config, release)
        rolled: list[str] = []  # old units a rolling deploy stopped on its way
        holding = config.no_overlap
        if holding:
            # The app cannot run two copies: stop the old one first. Proxies hold new requests
            # (bounded) until the new release is routed, instead of answering 503.
            self.state.set_holding(self.app, True)
        try:
            if holding:
                await self.router.publish(self.app, None)
                # What the old release already took finishes first (new requests are held).
                await self._drain([r for r in old_routes if r.web], QUICK_DRAIN_S)
                await self._stop_units(old_units)
                old_units, old_routes = [], ()
            try:
                if rolling and old_routes:
                    routes = await self._roll(config, release, wanted, old_routes, rolled)
                else:
                    routes = await self._bring_up(config, release, wanted)
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
            await self.router.publish(self.app, routes)
            log.info("%s: %d instance(s) of release %s published in %.0f ms", self.app,
                     len(routes), release.number, (time.monotonic() - flip) * 1000)
        finally:
            if holding:
                self.state.set_holding(self.app, False)
        self.store.update_app(self.app, current_release=release.number,
                              desired_state="running")
        self.store.set_release_status(self.app, release.number, "live")
        # Drain, then stop whatever ran before; deploy returns only when the old is gone.
        new_units = {r.unit for r in routes}
        await self._drain([r for r in old_routes if r.web and r.unit not in new_units])
        stopped = rolled + await self._stop_units(
            [u for u in old_units if u not in new_units and u not in rolled])
        self._collect_old_releases()
        first = next((r for r in routes if r.web), routes[0] if routes else None)
        self.store.add_event(f"{action}_succeeded", self.app,
                             f"release {release.number} of {self.app} is live",
                             {"release": release.number,
                              "unit": first.unit if first else None,
                              "units": sorted(new_units)})
        if action in ("deploy", "rollback"):  # a start or restart keeps the current one
            self.events.publish(ReleaseChanged(self.app, release.number))
        return Outcome(self.app, action, release.release_id, first.unit if first else None,
                       first.port if first and first.web else None, tuple(stopped),
                       f"release {release.number} of {self.app} is live"
                       + ("" if _describe_counts(routes) == "web=1"
                          else f" ({_describe_counts(routes)})"), tuple(release_log))

    async def _roll(self, config: AppConfig, release: Release,
                    wanted: dict[str, ProcessConfig], old_routes: tuple[Route, ...],
                    stopped: list[str]) -> tuple[Route, ...]:
        """A rolling deploy: for each new instance in turn, start it, wait until ready, put
        it in place of the old instance of the same process and number, drain and stop that
        one. Never more than one extra instance runs (servers without memory for two full
        sets), the undo included.

        A failure undoes itself (``_unroll``): each instance already replaced gets an
        instance of its old release back, in a fresh generation, and the old release serves
        everywhere again. Raises ``NotReady`` with the failure's reason and what was undone
        (or, if undoing failed too, what still runs the new release)."""
        existing = [p[1] for u in self.state.units_of(self.app)
                    if (p := parse_app_unit_name(u.name))]
        generation = next_instance(release.release_id, existing)
        old_by_key: dict[tuple[str, int], Route] = {}
        for route in old_routes:
            inst = parse_instance_token(route.instance)
            if inst is not None:
                old_by_key[(inst.process, inst.number)] = route
        live = list(old_routes)
        started: list[Route] = []
        replaced: list[tuple[Route | None, Route]] = []  # (old, its successor), in order
        try:
            for name, pc in wanted.items():
                for number in range(1, pc.count + 1):
                    inst = build_instance_id(generation, name, number)
                    (route,) = await self._start_instances(config, release, [inst], wanted)
                    started.append(route)
                    old = old_by_key.pop((name, number), None)
                    live = [r for r in live if r is not old] + [route]
                    await self.router.publish(self.app, tuple(live))
                    replaced.append((old, route))
                    if old is not None:
                        await self._drain([old] if old.web else [])
                        stopped += await self._stop_units([old.unit])
        except (NotReady, JobFailed) as exc:
            if not replaced:
                raise
            undone = await self._unroll(config, release, replaced, live)
            first, newline, logs = exc.message.partition("\n")
            raise NotReady(f"{first}; {undone}{newline}{logs}") from None
        if not started:
            raise NotReady(f"every process of {self.app} is scaled to 0; scale one up with "
                           f"`bindrop scale {self.app} web=1`")
        return tuple(started)

    async def _unroll(self, config: AppConfig, release: Release,
                      replaced: list[tuple[Route | None, Route]], live: list[Route]) -> str:
        """Undo a failed rolling deploy of ``release``, one instance at a time as it went:
        start the old release's instance of the same process and number (a fresh generation:
        the old unit's name may still be taken), wait until ready, publish it in place of the
        new one, drain and stop the new one. An instance that had no predecessor is dropped
        (unless it is the last one routed). Stops at the first failure, leaving what serves
        routed. Returns what it did, for the error message; never raises ``BindropError``."""
        existing = [p[1] for u in self.state.units_of(self.app)
                    if (p := parse_app_unit_name(u.name))]
        generations: dict[str, str] = {}
        restored = dropped = 0
        back_to: list[str] = []
        try:
            for old, new in replaced:
                if old is None:
                    if len(live) > 1:
                        live = [r for r in live if r is not new]
                        await self.router.publish(self.app, tuple(live))
                        await self._drain([new] if new.web else [])
                        await self._stop_units([new.unit])
                        dropped += 1
                    continue
                slot = parse_instance_token(old.instance)
                assert slot is not None  # old routes are keyed by their parsed tokens
                old_release = self._release(int(slot.release))
                if slot.release not in generations:
                    generations[slot.release] = next_instance(slot.release, existing)
                inst = build_instance_id(generations[slot.release], slot.process, slot.number)
                (back,) = await self._start_instances(config, old_release, [inst],
                                                      self._wanted(old_release))
                live = [back if r is new else r for r in live]
                await self.router.publish(self.app, tuple(live))
                await self._drain([new] if new.web else [])
                await self._stop_units([new.unit])
                restored += 1
                if slot.release not in back_to:
                    back_to.append(slot.release)
        except (BindropError, ValueError) as exc:
            detail = exc.message if isinstance(exc, BindropError) else str(exc)
            log.warning("%s: undoing the rolling deploy of release %s failed: %s",
                        self.app, release.number, detail)
            left = sum(1 for r in live if _of_release(r, release))
            why = detail.partition("\n")[0]
            return (f"undoing it failed too ({why}): "
                    f"{_instances(restored)} already replaced got the old release back, "
                    f"{_instances(left)} still run release {release.number} "
                    "(deploy again, or roll back, to finish)")
        done = []
        if restored:
            done.append(f"the {_instances(restored)} already replaced "
                        f"{'runs' if restored == 1 else 'run'} release "
                        f"{' and '.join(back_to)} again")
        if dropped:
            done.append(f"the {_instances(dropped)} it added "
                        f"{'is' if dropped == 1 else 'are'} stopped again")
        return "; ".join(done) or f"release {release.number} keeps its last instance"

    async def _scale(self) -> Outcome:
        """Start missing instances of the live generation (ready first), then drain and
        stop surplus ones (the highest numbers)."""
        config = self.store.get_app(self.app)
        view = self.state.app(self.app)
        live = view.instances if view is not None else ()
        if config.desired_state != "running" or config.current_release is None or not live:
            return Outcome(self.app, "scale", message=f"{self.app} is not running; the new "
                           "scale applies when it starts")
        release = self._current_release(config)
        wanted = self._wanted(release)
        generation = instance_generation(live[0].instance)
        have: dict[str, list[tuple[int, Route]]] = {}
        for route in live:
            inst = parse_instance_token(route.instance)
            if inst is not None:
                have.setdefault(inst.process, []).append((inst.number, route))
        missing: list[InstanceId] = []
        surplus: list[Route] = []
        for process in sorted(set(wanted) | set(have)):
            count = wanted[process].count if process in wanted else 0
            numbers = sorted(have.get(process, []), key=lambda item: item[0])
            taken = {n for n, _ in numbers}
            free = (n for n in range(1, 10_000) if n not in taken)
            for _ in range(count - len(numbers)):
                missing.append(build_instance_id(generation, process, next(free)))
            surplus += [r for _, r in numbers[count:]]
        started: tuple[Route, ...] = ()
        if missing:
            started = await self._start_instances(config, release, missing, wanted)
        keep = tuple(r for r in live if r not in surplus) + started
        if started or surplus:
            await self.router.publish(self.app, keep)
        await self._drain([r for r in surplus if r.web])
        stopped = await self._stop_units([r.unit for r in surplus])
        message = f"{self.app} runs {_describe_counts(keep)}"
        if started or stopped:
            self.store.add_event("app_scaled", self.app, message,
                                 {"started": [r.unit for r in started], "stopped": stopped})
        first = next((r for r in keep if r.web), None)
        return Outcome(self.app, "scale", release.release_id, first.unit if first else None,
                       first.port if first else None, tuple(stopped), message)

    # -- steps ---------------------------------------------------------------------------

    def _wanted(self, release: Release) -> dict[str, ProcessConfig]:
        """Each process type of ``release`` and its stored settings (one instance if none)."""
        stored = self.store.get_processes(self.app)
        return {name: stored.get(name, ProcessConfig())
                for name in release.process_commands()}

    async def _drain(self, routes: list[Route], most: float | None = None) -> None:
        """Wait until no proxy has a request in flight to ``routes`` (bounded by the drain
        timeout, or ``most`` seconds if shorter)."""
        if not routes:
            return
        drain = time.monotonic()
        timeout = min(self.settings.drain_timeout, most or self.settings.drain_timeout)
        await asyncio.gather(*(self.router.drain(r, timeout) for r in routes))
        log.info("%s: %s drained in %.0f ms", self.app, ", ".join(r.unit for r in routes),
                 (time.monotonic() - drain) * 1000)

    async def _bring_up(self, config: AppConfig, release: Release,
                        wanted: dict[str, ProcessConfig]) -> tuple[Route, ...]:
        """Start every instance of ``release`` as a fresh generation and wait until all are
        ready; undo on failure."""
        instances = [p[1] for u in self.state.units_of(self.app)
                     if (p := parse_app_unit_name(u.name))]
        generation = next_instance(release.release_id, instances)
        wanted_instances = [build_instance_id(generation, name, n)
                            for name, pc in wanted.items() for n in range(1, pc.count + 1)]
        if not wanted_instances:
            raise NotReady(f"every process of {self.app} is scaled to 0; scale one up with "
                           f"`bindrop scale {self.app} web=1`")
        return await self._start_instances(config, release, wanted_instances, wanted)

    async def _fetch_blob(self, release: Release) -> None:
        """Evicted by gc (the bucket has it): fetch the release's blob back, its sha256
        checked, before anything runs it. A blob still here is marked used, so gc (which
        keeps blobs used within the hour) leaves it while its units start."""
        if self.blobs.remote is not None and not self.blobs.touch(release.sha256):
            await self.blobs.fetch(release.sha256)

    async def _start_instances(self, config: AppConfig, release: Release,
                               instances: list[InstanceId], wanted: dict[str, ProcessConfig]
                               ) -> tuple[Route, ...]:
        await self._fetch_blob(release)
        started: list[Route] = []
        began = time.monotonic()
        try:
            for inst in instances:
                started.append(await self._start_one(config, release, inst,
                                                     wanted.get(inst.process, ProcessConfig())))
            # Factories, not coroutines: a wait cancelled before it begins creates none.
            await self._actor().wait(_all(
                [functools.partial(self._wait_ready, config, release, r,
                                   wanted.get(r.process, ProcessConfig()))
                 for r in started]))
        except BaseException:  # not ready, or cancelled by a stop, or the hub is stopping
            await self._stop_units([r.unit for r in started])
            raise
        log.info("%s: %s ready in %.0f ms", self.app, ", ".join(r.unit for r in started),
                 (time.monotonic() - began) * 1000)
        return tuple(started)

    async def _start_one(self, config: AppConfig, release: Release, inst: InstanceId,
                         pconf: ProcessConfig) -> Route:
        exec_path, args = self._executable(release, inst.process)
        unit = app_unit_name(self.app, inst.token)
        port = self.ports.allocate(unit) if inst.process == WEB else None
        limits = config.limits
        if pconf.memory_max is not None:
            limits = Limits(pconf.memory_max, limits.cpu_quota, limits.tasks_max)
        spec = build_app_unit(
            AppSpec(self.app, self.store.get_env(self.app), limits, config.system,
                    system_read_only_paths() if config.system else ()),
            ReleaseSpec(inst.token, exec_path, args, port),
            self.settings,
        )
        log.info("%s: starting %s%s", self.app, spec.name,
                 f" on port {port}" if port else "")
        try:
            await self.manager.start_transient_unit(spec.name, spec.properties)
        except JobFailed as exc:
            await self._stop_units([spec.name])
            raise NotReady(await self._with_logs(spec.name, exc.message)) from None
        except BaseException:
            self.ports.release(unit)
            raise
        return Route(spec.name, inst.token, port or 0, inst.process)

    async def _wait_ready(self, config: AppConfig, release: Release, route: Route,
                          pconf: ProcessConfig) -> None:
        if not route.web:  # no port to ask: started (Type=exec) and not down is ready
            reason = self._why_down(route.unit)
            if reason is not None:
                raise NotReady(await self._with_logs(
                    route.unit, f"{route.process} of release {release.number} of {self.app} "
                                f"stopped: {reason}"))
            return
        check = HealthCheck(path=pconf.health_path or config.health_path,
                            timeout=config.health_timeout_s)
        try:
            await wait_until_ready(check, route.port, gone=lambda: self._why_down(route.unit),
                                   changed=self.state.changed)
        except NotReady as exc:
            raise NotReady(await self._with_logs(
                route.unit, f"release {release.number} of {self.app} did not get ready: "
                            f"{exc.message}")) from None

    async def _release_command(self, config: AppConfig, release: Release) -> list[str]:
        """Run the release command once as a oneshot unit; its last log lines. ``NotReady``
        with them if it fails (nothing else has changed then)."""
        assert release.release_command is not None
        await self._fetch_blob(release)
        exec_path, args = self._resolve(release, release.release_command)
        spec = build_release_task(
            AppSpec(self.app, self.store.get_env(self.app), config.limits, config.system,
                    system_read_only_paths() if config.system else ()),
            release.release_id, exec_path, args, self.settings)
        log.info("%s: running the release command of release %s", self.app, release.number)
        started = time.monotonic()
        try:
            await self.manager.start_transient_unit(spec.name, spec.properties)
        except JobFailed as exc:
            reason = await self._with_logs(
                spec.name, f"the release command of release {release.number} of {self.app} "
                           f"failed ({exc.message}); the deploy stopped there and the "
                           "previous release keeps serving")
            await self._stop_units([spec.name])
            self.store.set_release_status(self.app, release.number, "failed", reason[:4000])
            self.store.add_event("release_command_failed", self.app, reason,
                                 {"release": release.number})
            raise NotReady(reason) from None
        finally:
            # oneshot, CollectMode=inactive: unload it (a failed one needs a reset)
            await self.manager_reset(spec.name)
        lines = await self.journal.tail(spec.name, LOG_LINES)
        self.store.add_event("release_command_succeeded", self.app,
                             f"the release command of release {release.number} of "
                             f"{self.app} succeeded in {time.monotonic() - started:.1f} s",
                             {"release": release.number, "log": lines})
        return lines

    async def manager_reset(self, unit: str) -> None:
        """Unload a finished task unit (a failed one needs a reset first). Never raises."""
        with contextlib.suppress(BindropError):
            await self.manager.reset_failed_unit(unit)
        with contextlib.suppress(BindropError):
            await self.manager.stop_unit(unit)

    def _why_down(self, unit: str) -> str | None:
        """Why a starting unit is no use any more (crashed, gave up, gone); None while fine."""
        state = self.state.unit(unit)
        if state is None:
            last = self.state.last_state(unit)
            return f"the unit {describe_unit_exit(last)}" if last else None
        if state.active_state == ActiveState.FAILED or state.sub_state == SubState.AUTO_RESTART:
            return f"the unit {describe_unit_exit(state)}"
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

    def _rollback_target(self, to: int | None) -> Release:
        if to is not None:
            return self._release(to)
        config = self.store.get_app(self.app)
        current = config.current_release
        earlier = [r for r in self.store.list_releases(self.app)
                   if current is not None and r.number < current and r.status != "failed"]
        if not earlier:
            raise NotFound(f"{self.app} has no earlier release to roll back to; "
                           f"see `bindrop releases {self.app}`")
        return earlier[0]

    def _executable(self, release: Release, process: str = WEB) -> tuple[str, tuple[str, ...]]:
        commands = release.process_commands()
        if process not in commands:
            raise NotFound(f"release {release.number} of {self.app} has no process "
                           f"{process!r}; it has {', '.join(sorted(commands))}")
        return self._resolve(release, commands[process])

    def _resolve(self, release: Release, command: tuple[str, ...]
                 ) -> tuple[str, tuple[str, ...]]:
        return resolve_command(self.blobs, self.settings, release, command)


def resolve_command(blobs: BlobStore, settings: Settings, release: Release,
                    command: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The program and arguments of ``command`` of ``release`` (a bundle's program is
    relative to its root; a binary's command is arguments to the binary)."""
    blob = blobs.path(release.sha256)
    if not blob.exists():
        raise NotFound(f"the file of release {release.number} of {release.app} is missing "
                       "from the blob store; deploy it again")
    if release.kind == "bundle":
        root = unpack_bundle(blob, release.sha256, bundles_dir(settings))
        program = root / command[0]
        return str(program), tuple(command[1:])
    return str(blob), tuple(command)


def _instances(n: int) -> str:
    return f"{n} instance" if n == 1 else f"{n} instances"


def _of_release(route: Route, release: Release) -> bool:
    inst = parse_instance_token(route.instance)
    return inst is not None and inst.release == release.release_id


def _describe_counts(routes: tuple[Route, ...]) -> str:
    counts: dict[str, int] = {}
    for route in routes:
        counts[route.process] = counts.get(route.process, 0) + 1
    return " ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no instance"


async def _all(waits: list[Callable[[], Awaitable[None]]]) -> None:
    """Run every wait; on the first failure cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(w()) for w in waits]
    if not tasks:
        return
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
