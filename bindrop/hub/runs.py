"""One-off runs: a command with an app's current release, env, user, data dir and sandbox.

Each run is its own transient unit (``bindrop-app-<app>-<release>_run.<id>.service``), never
a process of the hub: the hub starts it, follows it through the state store until its main
process ends, reads the exit status and unloads it. Not an actor command: a run neither
changes what serves the app nor waits for a deploy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from typing import Any

from bindrop.errors import BindropError, InvalidInput, NotFound
from bindrop.hub.lifecycle import resolve_command
from bindrop.hub.logs import JournalReader
from bindrop.hub.state import StateStore
from bindrop.hub.system import system_read_only_paths
from bindrop.settings import Settings
from bindrop.store import BlobStore, Store
from bindrop.systemd import ActiveState, Manager, SubState
from bindrop.systemd.types import UnitState
from bindrop.units import AppSpec, UnitSpec
from bindrop.units.render import render_property
from bindrop.units.tasks import build_run_task

log = logging.getLogger(__name__)

#: Set by systemd-run itself (the command, --service-type, --collect, --pty).
TTY_SKIPPED = frozenset({"ExecStart", "Type", "RemainAfterExit", "CollectMode"})
#: Where a bare program name (``sh``, ``python3``) is looked up: inside the unit, on its PATH.
ENV_PROGRAM = "/usr/bin/env"
ARGS_MAX = 256


def run_exit_status(state: UnitState) -> int | None:
    """The run's exit status once its main process ended (128 + signal if killed), or None
    while it runs. Pure."""
    done = (state.sub_state == SubState.EXITED or state.active_state == ActiveState.FAILED
            or (state.active_state == ActiveState.INACTIVE and state.exec_main_code != 0))
    if not done:
        return None
    if state.exec_main_code in (2, 3):  # killed, dumped
        return 128 + state.exec_main_status
    return state.exec_main_status


def split_program(argv: Sequence[str], bundle: bool) -> tuple[str, ...]:
    """``argv`` as the command to resolve: a bare name goes through ``/usr/bin/env`` (the
    unit's PATH), an absolute path stays, ``./x`` is inside a bundle. ``InvalidInput`` for
    an empty command or a relative path with a binary release. Pure."""
    if (isinstance(argv, str) or not argv or len(argv) > ARGS_MAX
            or not all(isinstance(a, str) and "\0" not in a for a in argv)):
        raise InvalidInput("give the command to run and its arguments, e.g. "
                           "`bindrop run blog -- sh -c 'echo $PORT'`")
    program = argv[0]
    if program.startswith("/"):
        return tuple(argv)
    if "/" in program:
        if not bundle:
            raise InvalidInput(f"{program!r} is a relative path, which only a bundle's "
                               "release can resolve; give an absolute path or a name on PATH")
        return tuple(argv)
    return (ENV_PROGRAM, *argv)


class Runs:
    """Starts and follows one-off runs. Only the hub creates one (``hub.runs``)."""

    def __init__(self, *, settings: Settings, store: Store, blobs: BlobStore, manager: Manager,
                 state: StateStore, journal: JournalReader) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.manager = manager
        self.state = state
        self.journal = journal

    async def start(self, app: str, argv: Sequence[str]) -> str:
        """Start ``argv`` with the app's current release; return the unit's name.
        ``NotFound`` for an app without a release (nothing started)."""
        await self._fetch_blob(app)
        spec, number = self._spec(app, argv)
        await self.manager.start_transient_unit(spec.name, spec.properties)
        log.info("%s: run %s started", app, spec.name)  # never the arguments: secrets
        self.store.add_event("run_started", app, f"{app}: one-off run {spec.name} started",
                             {"unit": spec.name, "release": number})
        return spec.name

    async def _fetch_blob(self, app: str) -> None:
        """The current release's blob back from the bucket when gc evicted it."""
        config, blobs = self.store.get_app(app), self.blobs
        if config.current_release is None or blobs.remote is None:
            return
        release = self.store.get_release(app, config.current_release)
        if not blobs.exists(release.sha256):
            await blobs.fetch(release.sha256)

    def plan(self, app: str, argv: Sequence[str]) -> dict[str, Any]:
        """What ``systemd-run --pty`` on the server needs to run ``argv`` as ``start`` would,
        on a terminal: the unit name, the program and arguments, and every other property as
        a unit-file assignment (``-p``). Starts nothing; the caller's systemd-run does."""
        spec, number = self._spec(app, argv)
        execs = [p.value for p in spec.properties if p.name == "ExecStart"]
        path, args, _ = execs[0][0]  # type: ignore[index]
        properties = [line for p in spec.properties if p.name not in TTY_SKIPPED
                      for line in render_property(p)]
        self.store.add_event("run_started", app, f"{app}: one-off run {spec.name} "
                             "started on a terminal", {"unit": spec.name,
                                                       "release": number})
        # The arguments keep their "$$" escapes: systemd (252) expands what systemd-run sends.
        # "prefix" is how the server runs systemd's tools: nothing on a server, nsenter into
        # a private systemd (bindrop machine), as the hub's journal reader does.
        return {"prefix": list(self.journal.prefix), "unit": spec.name,
                "argv": [path, *args[1:]], "properties": properties}

    def _spec(self, app: str, argv: Sequence[str]) -> tuple[UnitSpec, int]:
        store = self.store
        config = store.get_app(app)
        if config.current_release is None:
            raise NotFound(f"{app} has no release yet: deploy one before running a command "
                           "with it")
        release = store.get_release(app, config.current_release)
        command = split_program(argv, release.kind == "bundle")
        if command[0].startswith("/"):
            exec_path, args = command[0], tuple(command[1:])
        else:
            exec_path, args = resolve_command(self.blobs, self.settings, release,
                                              command)
        spec = build_run_task(
            AppSpec(app, store.get_env(app), config.limits, config.system,
                    system_read_only_paths() if config.system else ()),
            release.release_id, os.urandom(6).hex(), exec_path, args, self.settings)
        return spec, release.number

    async def wait(self, unit: str) -> int:
        """Wait (on the state stream) until the run's main process ended; its exit status."""
        state = self.state
        while True:
            current = state.unit(unit) or state.last_state(unit)
            if current is not None:
                status = run_exit_status(current)
                if status is not None:
                    return status
                if state.unit(unit) is None:  # gone without a status we understand
                    return 1
            await state.changed()

    async def finish(self, unit: str) -> None:
        """Unload the run's unit (stopping it if it still runs). Never raises."""
        manager = self.manager
        with contextlib.suppress(BindropError):
            await manager.stop_unit(unit)
        with contextlib.suppress(BindropError):
            await manager.reset_failed_unit(unit)


async def follow_output(prefix: Sequence[str], unit: str) -> asyncio.subprocess.Process:
    """``journalctl -f`` of the unit's own lines (JSON), from its first."""
    argv = [*prefix, "journalctl", "--no-pager", "-o", "json", "--output-fields=MESSAGE,__CURSOR",
            "-n", "all", "--follow", f"_SYSTEMD_UNIT={unit}"]
    return await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, limit=4 * 1024 * 1024, start_new_session=True)
