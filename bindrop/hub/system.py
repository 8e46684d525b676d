"""bindrop's own apps (system apps): the dashboard, run by the hub exactly like a user's app.

A system app is an ordinary app flagged ``system``: its own unit per release, routed by the
proxy at its host, hidden from ``bindrop apps`` unless asked. Its release is a small launcher
script stored as a blob like any upload, which execs the installed bindrop
(``python -m bindrop dashboard serve``); so a rollback, a restart and the release history work
as for every app, and a new launcher (another Python, another API address) is a new release.

The dashboard holds no token of its own: every call it makes carries the token of the person
logged in, so the API's own checks (read-only or admin, revoked or not) decide what it may do.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bindrop import __version__
from bindrop.domain.hosts import parse_host
from bindrop.errors import Conflict, InvalidInput
from bindrop.hub.commands import Command, Deploy, Start
from bindrop.hub.pubsub import AppCreated, PubSub
from bindrop.hub.routetable import check_hosts_free
from bindrop.hub.state import AppRunState, StateStore
from bindrop.settings import Settings
from bindrop.store import AppConfig, BlobStore, Store

log = logging.getLogger(__name__)

DASHBOARD_APP = "bindrop-dashboard"
#: What the dashboard's releases are recorded as created by.
CREATED_BY = "bindrop (system app)"
#: Where an app unit sees something else than the host: homes (ProtectHome) and the
#: temporary folders (PrivateTmp). A bindrop run from there (pyenv, a checkout in /tmp in CI)
#: is bound into its system apps read-only.
HIDDEN = ("/root", "/home", "/tmp", "/var/tmp")
LAUNCHER_MAX = 64 * 1024


def build_launcher(python: str, api_url: str, version: str = __version__) -> bytes:
    """The dashboard's release: a script that execs ``python -m bindrop dashboard serve``
    against the control API at ``api_url``. Pure; the same inputs give the same bytes (and
    so the same blob). ``version`` is written in it, so that setting the dashboard up after
    an upgrade of bindrop makes a new release, which restarts it on the new code."""
    if not os.path.isabs(python):
        raise InvalidInput(f"the dashboard's Python must be an absolute path, not {python!r}")
    if not api_url.startswith(("http://", "https://")):
        raise InvalidInput(f"the dashboard reaches the control API over HTTP: give an "
                           f"http(s):// address, not {api_url!r}")
    argv = [python, "-m", "bindrop", "dashboard", "serve", "--server", api_url]
    return ("#!/bin/sh\n"
            "# bindrop's dashboard (a system app); written by the hub, see `bindrop dashboard`.\n"
            f"# bindrop {version}\n"
            f"exec {shlex.join(argv)}\n").encode()


def build_read_only_paths(paths: Iterable[str]) -> tuple[str, ...]:
    """Of ``paths`` (where the Python a system app runs on lives), those inside a home or a
    temporary folder, which the app unit otherwise hides: they are bound in read-only. Pure."""
    shown: list[str] = []
    for path in paths:
        path = os.path.normpath(path)
        inside = any(path == h or path.startswith(h + "/") for h in HIDDEN)
        if inside and path not in shown and not any(path.startswith(s + "/") for s in shown):
            shown.append(path)
    return tuple(shown)


def system_read_only_paths() -> tuple[str, ...]:
    """The hidden paths this very bindrop needs: its Python (a pyenv build, a
    virtualenv) and its code (an editable install from a checkout in a home)."""
    code = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # the bindrop package
    return build_read_only_paths([sys.prefix, sys.base_prefix,
                                  os.path.realpath(sys.executable), code])


def parse_dashboard_host(text: object) -> str:
    """The dashboard's host: a host name without a path (``InvalidInput`` otherwise)."""
    if not isinstance(text, str):
        raise InvalidInput("host must be a host name such as dashboard.example.com")
    host = parse_host(text)
    if "/" in host:
        raise InvalidInput(f"the dashboard takes a whole host, such as dashboard.example.com, "
                           f"not {text!r}")
    return host


@dataclass(frozen=True)
class SystemAppSetup:
    """What ``SystemApps.ensure_dashboard`` found and did."""

    app: str
    host: str
    release: int
    changed: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "host": self.host, "release": self.release,
                "changed": list(self.changed)}


class SystemApps:
    """Sets bindrop's own apps up. Only the hub creates one (``hub.system_apps``).

    ``update_app`` changes an app's settings as the API does (``ConfigChanges.update_app``);
    ``call`` queues a command for an app's actor and waits for its outcome (``Hub.call``).
    """

    def __init__(self, *, settings: Settings, store: Store, blobs: BlobStore,
                 state: StateStore, events: PubSub,
                 update_app: Callable[[str, Mapping[str, object]], Awaitable[object]],
                 call: Callable[[str, Command], Awaitable[object]]) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.state = state
        self.events = events
        self.update_app = update_app
        self.call = call

    async def ensure_dashboard(self, host: str, api_url: str | None = None) -> SystemAppSetup:
        """Make the dashboard system app exist, answer at ``host`` and run the current
        launcher.

        Idempotent: a second call with the same host and API address changes nothing. The
        API address defaults to the hub's TCP listener (``settings.api_port``); with neither,
        ``Conflict``: the dashboard cannot run without the TCP control API.
        """
        host = parse_dashboard_host(host)
        if api_url is None:
            if self.settings.api_port is None:
                raise Conflict("the dashboard talks to the TCP control API, which is off; "
                               "install with --api-port PORT (e.g. `bindrop install "
                               "--api-port 7300`)")
            api_url = f"http://127.0.0.1:{self.settings.api_port}"
        check_hosts_free([host], self.settings.control_host)
        changed: list[str] = []
        config = self._find()
        if config is None:
            self.store.create_app(AppConfig(name=DASHBOARD_APP, hosts=(host,), system=True,
                                            health_path="/healthz"))
            self.store.add_event("app_created", DASHBOARD_APP,
                                 "the dashboard (system app) created")
            self.events.publish(AppCreated(DASHBOARD_APP))
            changed.append("created")
        elif tuple(config.hosts) != (host,):
            await self.update_app(DASHBOARD_APP, {"hosts": [host]})
            changed.append("host")
        launcher = build_launcher(sys.executable, api_url)
        release = self._current_launcher(launcher)
        if release is None:
            blob = await self.blobs.put_stream([launcher], max_size=LAUNCHER_MAX)
            release = self.store.add_release(DASHBOARD_APP, blob.sha256, blob.size, "binary",
                                             [], CREATED_BY).number
            self.store.add_event("release_uploaded", DASHBOARD_APP,
                                 f"release {release} of {DASHBOARD_APP} written",
                                 {"release": release, "sha256": blob.sha256,
                                  "size": blob.size})
            await self.call(DASHBOARD_APP, Deploy(release))
            changed.append("release")
        else:
            view = self.state.app(DASHBOARD_APP)
            if view is None or view.state != AppRunState.RUNNING:
                await self.call(DASHBOARD_APP, Start())
                changed.append("started")
        log.info("dashboard at %s: %s", host, ", ".join(changed) or "unchanged")
        return SystemAppSetup(DASHBOARD_APP, host, release, tuple(changed))

    def _find(self) -> AppConfig | None:
        for app in self.store.list_apps(include_system=True):
            if app.name == DASHBOARD_APP:
                if not app.system:
                    raise Conflict(f"an app named {DASHBOARD_APP!r} exists and is not "
                                   "bindrop's own; destroy or rename it before setting up "
                                   "the dashboard")
                return app
        return None

    def _current_launcher(self, launcher: bytes) -> int | None:
        """The current release if it is exactly ``launcher`` (and its blob is there)."""
        config = self.store.get_app(DASHBOARD_APP)
        if config.current_release is None:
            return None
        current = self.store.get_release(DASHBOARD_APP, config.current_release)
        if current.sha256 != hashlib.sha256(launcher).hexdigest():
            return None
        return current.number if self.blobs.exists(current.sha256) else None
