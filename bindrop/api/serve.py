"""Serving the control API: the unix socket (root only) and, if configured, TCP on
127.0.0.1 with tokens. ``bindrop hub`` runs ``async with serve_api(hub, settings): ...``."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bindrop.api.app import make_api_app
from bindrop.api.bucket import BucketControl
from bindrop.api.jobs import Jobs
from bindrop.errors import Conflict
from bindrop.hub.hub import Hub
from bindrop.settings import Settings

#: Long streams (logs, events) end at shutdown; requests still running get this long.
SHUTDOWN_TIMEOUT_S = 5.0
#: How long the server keeps reading (and dropping) a body it refused before closing, so the
#: client reads the refusal instead of a reset. aiohttp's default is 10 s.
LINGER_S = 1.0
TCP_HOST = "127.0.0.1"


@dataclass(frozen=True)
class ApiServer:
    """Where the API listens: ``tcp_port`` is the bound port (None: no TCP listener)."""

    socket_path: Path
    tcp_port: int | None


def _runner(app: web.Application) -> web.AppRunner:
    # handler_cancellation: a client that goes away ends its log or event stream.
    return web.AppRunner(app, handle_signals=False, access_log=None,
                         shutdown_timeout=SHUTDOWN_TIMEOUT_S, handler_cancellation=True,
                         lingering_time=LINGER_S)


def _clear_stale_socket(path: Path) -> None:
    """Remove the socket a hub that died left behind; never one a live hub listens on."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise Conflict(f"{path} exists and is not a socket; move it away and start again")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # nobody listens: stale
            return
    raise Conflict(f"another hub already serves {path}; stop it first "
                   "(systemctl stop bindrop)")


@contextlib.asynccontextmanager
async def serve_api(hub: Hub, settings: Settings, *,
                    local_only: Callable[[web.Application], None] | None = None,
                    bucket: BucketControl | None = None) -> AsyncIterator[ApiServer]:
    """Listen on ``settings.control_socket`` (mode 0600) and, when ``settings.api_port`` is
    set, on 127.0.0.1 (port 0 picks a free one). Stops both on exit; ongoing streams end.

    ``local_only`` may add routes to the unix socket's application only (the proxies' link,
    ``bindrop.api.proxylink.add_proxy_routes``): they pass the same middlewares.
    """
    path = settings.control_socket
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    _clear_stale_socket(path)
    jobs = Jobs()
    local = make_api_app(hub, settings, require_token=False, jobs=jobs, bucket=bucket)
    if local_only is not None:
        local_only(local)
    runners = [_runner(local)]
    if settings.api_port is not None:
        runners.append(_runner(make_api_app(hub, settings, require_token=True, jobs=jobs,
                                            bucket=bucket)))
    try:
        for runner in runners:
            await runner.setup()
        # Created with a umask that leaves nobody else a moment to connect.
        old_umask = os.umask(0o177)
        try:
            await web.UnixSite(runners[0], str(path)).start()
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        port = None
        if settings.api_port is not None:
            site = web.TCPSite(runners[1], TCP_HOST, settings.api_port, reuse_address=True)
            await site.start()
            port = int(runners[1].addresses[0][1])  # the bound port when asked for port 0
        yield ApiServer(path, port)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
