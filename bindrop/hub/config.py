"""Changes to desired config that the control API asks the hub for.

The hub is the only writer of SQLite, so every config change goes through here: create,
update and destroy apps, env and limits, release uploads, tokens. A change that alters how
the app's unit runs (env, limits) is followed by a zero-downtime ``Restart`` when the app is
running. Each operation validates before it writes and writes all or nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from bindrop.domain.processes import WEB, parse_procfile, parse_scale, validate_process_name
from bindrop.errors import Cancelled, Conflict, InvalidInput, JobFailed, NotFound, NotReady
from bindrop.hub.commands import Command, Restart, Scale, Stop
from bindrop.hub.lifecycle import Outcome
from bindrop.hub.ports import PortPool
from bindrop.hub.pubsub import AppCreated, AppDestroyed, ConfigChanged, PubSub
from bindrop.hub.routetable import check_hosts_free
from bindrop.hub.state import StateStore, is_up
from bindrop.settings import Settings
from bindrop.store import (
    AppConfig,
    BlobStore,
    Release,
    Store,
    bundles_dir,
    check_executable_content,
    unpack_bundle,
)
from bindrop.store.bundles import read_procfile
from bindrop.store.content import HEAD_SIZE
from bindrop.store.processes import ProcessConfig
from bindrop.store.releases import ReleaseKind, validate_command
from bindrop.store.tokens import Scope, Token
from bindrop.systemd import Manager
from bindrop.units.purge import build_purge_unit
from bindrop.units.tasks import parse_run_unit_name

log = logging.getLogger(__name__)

#: What a user may change on an existing app (the rest is bindrop's: name, release, state).
UPDATABLE = frozenset({
    "hosts", "health_path", "health_timeout_s", "memory_max", "cpu_quota", "tasks_max",
    "on_demand", "idle_timeout_s", "no_overlap", "maintenance_message", "body_limit",
    "liveness_interval_s", "https_redirect", "no_tls", "allow_http", "hsts",
})
#: Settings that are part of the running unit: changing them needs a restart.
IN_UNIT = frozenset({"memory_max", "cpu_quota", "tasks_max"})


@dataclass(frozen=True)
class Destroyed:
    app: str
    stopped: tuple[str, ...]
    blobs_removed: int
    data_purged: bool

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "stopped": list(self.stopped),
                "blobs_removed": self.blobs_removed, "data_purged": self.data_purged}


class ConfigChanges:
    """The hub's operations on desired config. Only the hub creates one (``hub.config``).

    ``call`` queues a command for an app's actor and waits for its outcome (``Hub.call``);
    ``drop_actor`` stops a destroyed app's actor; ``finish_run`` unloads a one-off run's unit.
    """

    def __init__(self, *, settings: Settings, store: Store, blobs: BlobStore,
                 state: StateStore, manager: Manager, ports: PortPool, events: PubSub,
                 call: Callable[[str, Command], Awaitable[Outcome]],
                 drop_actor: Callable[[str], Awaitable[None]],
                 finish_run: Callable[[str], Awaitable[None]]) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.state = state
        self.manager = manager
        self.ports = ports
        self.events = events
        self.call = call
        self.drop_actor = drop_actor
        self.finish_run = finish_run

    # -- apps ----------------------------------------------------------------------------

    def create_app(self, config: AppConfig) -> AppConfig:
        """Store a new app (stopped until its first deploy). ``Conflict`` if it exists or
        claims the control host."""
        if config.system:
            raise InvalidInput("system apps are bindrop's own; create the app without it")
        self._check_hosts(config.hosts)
        created = self.store.create_app(config)
        self.store.add_event("app_created", created.name, f"app {created.name} created")
        self.events.publish(AppCreated(created.name))
        return created

    async def update_app(self, app: str, changes: Mapping[str, object]
                         ) -> tuple[AppConfig, Outcome | None]:
        """Change some settings; restart the app if a setting of its unit changed (and undo
        the change if the restarted app does not get ready)."""
        refused = sorted(set(changes) - UPDATABLE)
        if refused:
            raise InvalidInput(f"cannot change {', '.join(refused)} here; settings that can "
                               f"change are: {', '.join(sorted(UPDATABLE))}")
        before = self.store.get_app(app)
        self._check_hosts(changes.get("hosts", ()))
        after = self.store.update_app(app, **changes)
        changed = sorted(k for k in changes if getattr(before, k) != getattr(after, k))
        if not changed:
            return after, None
        self.store.add_event("app_updated", app, f"{app}: changed {', '.join(changed)}",
                             {"changed": changed})
        self.events.publish(ConfigChanged(app, tuple(changed)))
        if not set(changed) & IN_UNIT:
            return after, None
        undo = {k: getattr(before, k) for k in changed}

        def undo_changes() -> None:
            self.store.update_app(app, **undo)
            self.events.publish(ConfigChanged(app, tuple(changed)))

        outcome = await self._restart_or_undo(app, undo_changes)
        return self.store.get_app(app), outcome

    def _check_hosts(self, hosts: object) -> None:
        # Anything but a list is refused by the store's own validation, with its message.
        if isinstance(hosts, list | tuple):
            check_hosts_free(hosts, self.settings.control_host)

    async def destroy_app(self, app: str, *, purge_data: bool = False) -> Destroyed:
        """Stop every unit of the app, delete its config and releases, remove blobs no other
        release uses, and with ``purge_data`` delete its data directory (through systemd).

        Events about the app stay: they are history.
        """
        if self.store.get_app(app).system:  # NotFound before anything happens
            raise Conflict(f"{app} is one of bindrop's own apps and cannot be destroyed")
        stopped: list[str] = []
        with contextlib.suppress(Cancelled):  # a newer command won; units are stopped below
            stopped += (await self.call(app, Stop())).stopped
        unused = self.store.delete_app(app)
        # Fails whatever was queued meanwhile and interrupts it (its unit is stopped by it).
        await self.drop_actor(app)
        for unit in self.state.units_of(app):
            if is_up(unit):  # a stopped unit may stay listed until systemd collects it
                with contextlib.suppress(NotFound):
                    await self.manager.stop_unit(unit.name)
                    stopped.append(unit.name)
            self.ports.release(unit.name)
        # One-off runs of the app are no instances (not in units_of): stop those too.
        for name in sorted(self.state.snapshot().units):
            if parse_run_unit_name(name, app):
                await self.finish_run(name)
                stopped.append(name)
        self.state.forget(app)
        still_used = self.store.referenced_blobs()
        removed = sum(self.blobs.remove(sha) for sha in sorted(unused - still_used))
        self.store.add_event("app_destroyed", app, f"app {app} destroyed",
                             {"purge_data": purge_data})
        self.events.publish(AppDestroyed(app))
        if purge_data:
            spec = build_purge_unit(app)
            try:
                await self.manager.start_transient_unit(spec.name, spec.properties)
            except JobFailed as exc:
                raise JobFailed(f"app {app} was destroyed but its data could not be deleted "
                                f"({exc.message}); see `journalctl -u {spec.name}`",
                                unit=exc.unit, result=exc.result) from None
        return Destroyed(app, tuple(stopped), removed, purge_data)

    # -- env and limits ------------------------------------------------------------------

    async def set_env(self, app: str, values: Mapping[str, str]) -> Outcome | None:
        """Set variables (all or none), then restart the app if it runs; undo them if the
        restarted app does not get ready."""
        before = self.store.get_env(app)
        self.store.set_env(app, values)
        log.info("%s: environment %s set", app, ", ".join(sorted(values)))  # names only
        self.store.add_event("env_changed", app, f"{app}: set {', '.join(sorted(values))}",
                             {"set": sorted(values)})

        def undo() -> None:
            added = [k for k in values if k not in before]
            if added:
                self.store.unset_env(app, added)
            self.store.set_env(app, {k: before[k] for k in values if k in before})

        return await self._restart_or_undo(app, undo)

    async def unset_env(self, app: str, keys: Iterable[str]) -> Outcome | None:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            raise InvalidInput("name at least one variable to unset")
        before = self.store.get_env(app)
        self.store.unset_env(app, wanted)
        self.store.add_event("env_changed", app, f"{app}: unset {', '.join(wanted)}",
                             {"unset": wanted})
        return await self._restart_or_undo(
            app, lambda: self.store.set_env(app, {k: before[k] for k in wanted}))

    async def _restart_or_undo(self, app: str, undo: Callable[[], object]) -> Outcome | None:
        """Restart the app if it runs. If the new unit does not get ready, the old one keeps
        serving with the old settings: put those back in the store too, so config and what
        runs agree, and say so."""
        view = self.state.app(app)
        if view is None or view.route is None:
            return None
        try:
            return await self.call(app, Restart())
        except NotReady as exc:
            undo()
            self.store.add_event("change_undone", app,
                                 f"{app}: the change was undone, the restart failed")
            raise NotReady(f"{exc.message}\nthe change was undone: {app} keeps running with "
                           "its previous settings") from None

    # -- process types -------------------------------------------------------------------

    async def scale(self, app: str, counts: Mapping[str, object], *,
                    memory_max: Mapping[str, int | None] | None = None,
                    health_path: Mapping[str, str | None] | None = None) -> Outcome:
        """Store how many instances of each process should run (and optionally a process's
        own memory limit or health path), then have the app's actor apply it.

        Checked before anything is written: process names (those of the current release,
        once there is one), counts from 0 to the server's ``max_instances``.
        """
        config = self.store.get_app(app)
        known = None
        if config.current_release is not None:
            release = self.store.get_release(app, config.current_release)
            known = frozenset(release.process_commands())
        names = {**dict.fromkeys(memory_max or {}, 0), **dict.fromkeys(health_path or {}, 0)}
        stored = self.store.get_processes(app)
        parsed = parse_scale(counts, known=known, max_instances=self.settings.max_instances
                             ) if counts else {}
        if not parsed and not names:
            raise InvalidInput("name at least one process and its count, e.g. web=3 worker=1")
        if known is not None and names:
            parse_scale(names, known=known)  # a setting of an unknown process
        changed: dict[str, ProcessConfig] = {}
        for name in {*parsed, *names}:
            current = stored.get(name, ProcessConfig())
            changes: dict[str, Any] = {}
            if name in parsed:
                changes["count"] = parsed[name]
            if memory_max is not None and name in memory_max:
                changes["memory_max"] = memory_max[name]
            if health_path is not None and name in health_path:
                changes["health_path"] = health_path[name]
            changed[name] = replace(current, **changes)
        self.store.set_processes(app, changed)
        self.store.add_event(
            "scale_changed", app, f"{app}: " + " ".join(
                f"{k}={v.count}" for k, v in sorted(changed.items())),
            {"counts": {k: v.count for k, v in changed.items()}})
        return await self.call(app, Scale())

    def processes(self, app: str) -> dict[str, Any]:
        """The app's process types: declared by the current release, with their count."""
        config = self.store.get_app(app)
        stored = self.store.get_processes(app)
        declared: dict[str, tuple[str, ...]] = {}
        release_cmd = None
        if config.current_release is not None:
            release = self.store.get_release(app, config.current_release)
            declared = release.process_commands()
            release_cmd = release.release_command
        return {"processes": [
            {"name": name, "command": list(declared.get(name, ())),
             "count": stored.get(name, ProcessConfig()).count,
             "memory_max": stored.get(name, ProcessConfig()).memory_max,
             "health_path": stored.get(name, ProcessConfig()).health_path,
             "declared": name in declared}
            for name in sorted({*declared, *stored}, key=lambda n: (n != "web", n))],
            "release_command": None if release_cmd is None else list(release_cmd),
            "max_instances": self.settings.max_instances}

    # -- releases ------------------------------------------------------------------------

    async def upload_release(self, app: str, chunks: AsyncIterable[bytes], *,
                             kind: ReleaseKind, command: Sequence[str], created_by: str,
                             max_size: int | None = None,
                             processes: Mapping[str, Sequence[str]] | None = None,
                             release_command: Sequence[str] | None = None) -> Release:
        """Stream an upload into the blob store and record a ``pending`` release.

        Checks the app and the command before reading a byte and the content from its first
        bytes; ``TooLarge`` past ``max_size`` (the settings' upload limit by default). A
        failed upload leaves no blob and no release behind.

        Process types: a bundle's ``Procfile`` declares them (and ``release:``); ``processes``
        and ``release_command`` (from ``--process`` and ``--release-cmd``) add to it or
        replace its lines; ``command``, when given, is ``web``'s. A bundle with a Procfile
        needs no ``command``.
        """
        self.store.get_app(app)
        command = validate_command("binary" if kind == "bundle" and not command else kind,
                                   command)
        extra = {validate_process_name(k): validate_command(kind, v)
                 for k, v in (processes or {}).items()}
        release_cmd = (None if release_command is None
                       else validate_command(kind, release_command))
        limit = max_size if max_size is not None else self.settings.upload_limit
        blob = await self.blobs.put_stream(_checked(chunks, kind == "bundle"),
                                           max_size=limit)
        try:
            procs, release_cmd = await self._processes(kind, blob.sha256, command, extra,
                                                       release_cmd)
            # With a bucket, a release exists off the server before it exists at all.
            await self.blobs.mirror(blob.sha256)
            release = self.store.add_release(app, blob.sha256, blob.size, kind, command,
                                             created_by, procs, release_cmd)
        except BaseException:
            if blob.sha256 not in self.store.referenced_blobs():
                self.blobs.remove(blob.sha256)
            raise
        self.store.add_event("release_uploaded", app,
                             f"release {release.number} of {app} uploaded",
                             {"release": release.number, "sha256": blob.sha256,
                              "size": blob.size})
        return release

    async def _processes(self, kind: ReleaseKind, sha256: str, command: tuple[str, ...],
                         extra: Mapping[str, tuple[str, ...]],
                         release_cmd: tuple[str, ...] | None
                         ) -> tuple[dict[str, tuple[str, ...]] | None, tuple[str, ...] | None]:
        """The release's process table (None: ``web`` = ``command`` alone) and release
        command, from the bundle's Procfile and the upload's own options."""
        declared: dict[str, tuple[str, ...]] = {}
        if kind == "bundle":
            root = await asyncio.to_thread(unpack_bundle, self.blobs.path(sha256), sha256,
                                           bundles_dir(self.settings))
            text = read_procfile(root)
            if text is not None:
                procfile = parse_procfile(text)
                declared = dict(procfile.processes)
                if release_cmd is None:
                    release_cmd = procfile.release
        if command:
            declared[WEB] = command
        elif WEB not in declared and not extra and not declared:
            if kind == "bundle":
                raise InvalidInput(
                    "a bundle needs a command: add a Procfile ('web: ./server') at its root, "
                    "or pass --cmd with the program to run inside the bundle")
            declared[WEB] = command
        elif kind == "binary" and WEB not in declared:
            declared[WEB] = command  # a binary's processes are arguments to the same file
        declared.update(extra)
        if declared == {WEB: command} and release_cmd is None:
            return None, None
        return declared, release_cmd

    # -- tokens --------------------------------------------------------------------------

    def create_token(self, name: str, scope: Scope,
                     lifetime: timedelta | None = None) -> tuple[str, Token]:
        """Return the token text (to show once) and its record. Never logs the text."""
        text, token = self.store.create_token(name, scope, lifetime)
        log.info("token %s (%s) created", name, scope)
        self.store.add_event("token_created", None, f"token {name} ({scope}) created")
        return text, token

    def revoke_token(self, name: str) -> Token:
        token = self.store.revoke_token(name)
        log.info("token %s revoked", name)
        self.store.add_event("token_revoked", None, f"token {name} revoked")
        return token

    def list_tokens(self) -> list[Token]:
        return self.store.list_tokens()

    def authenticate(self, text: str) -> Token:
        return self.store.authenticate(text)


async def _checked(chunks: AsyncIterable[bytes], bundle: bool) -> AsyncIterator[bytes]:
    """Pass ``chunks`` through, refusing content bindrop cannot run as soon as its first
    ``HEAD_SIZE`` bytes are in (``InvalidInput``), before the rest is read."""
    head = b""
    checked = False
    machine = platform.machine()
    async for chunk in chunks:
        if not checked:
            head += bytes(chunk[: HEAD_SIZE - len(head)])
            if len(head) >= HEAD_SIZE:
                check_executable_content(head, bundle=bundle, machine=machine)
                checked = True
        yield chunk
    if not checked and head:
        check_executable_content(head, bundle=bundle, machine=machine)



