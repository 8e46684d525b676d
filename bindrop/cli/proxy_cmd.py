"""``bindrop proxy``: run the reverse proxy (what bindrop-proxy.service runs)."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from bindrop.errors import InvalidInput
from bindrop.hub.notify import sd_notify
from bindrop.proxy.listen import bind_socket, inherited_sockets_by_kind
from bindrop.proxy.server import ProxyOptions, ProxyServer
from bindrop.proxy.workers import Supervisor, default_workers
from bindrop.settings import Settings


def parse_listen(text: str, option: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT`` (``[::]:80`` for IPv6) as a pair. Pure."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidInput(f"{option} {text!r} is not valid: use HOST:PORT such as 0.0.0.0:80")
    return host.strip("[]") or "0.0.0.0", int(port)


@click.command()
@click.option("--listen", default="0.0.0.0:80", show_default=True,
              envvar="BINDROP_PROXY_LISTEN",
              help="Where to listen when systemd passes no socket (socket activation). "
                   "[env: BINDROP_PROXY_LISTEN]")
@click.option("--listen-https", default=None, envvar="BINDROP_PROXY_LISTEN_HTTPS",
              help="Where to listen for HTTPS when systemd passes no socket; certificates "
                   "come from /etc/bindrop/tls/<hostname>.crt + .key. Default: no HTTPS. "
                   "[env: BINDROP_PROXY_LISTEN_HTTPS]")
@click.option("--hub-socket", type=click.Path(path_type=Path), default=None,
              envvar="BINDROP_PROXY_HUB_SOCKET",
              help="The hub's control socket (default: /run/bindrop/control.sock under "
                   "BINDROP_ROOT). [env: BINDROP_PROXY_HUB_SOCKET]")
@click.option("--upstream-timeout", type=float, default=60.0, show_default=True,
              envvar="BINDROP_PROXY_UPSTREAM_TIMEOUT",
              help="Seconds an app has to start answering before the visitor gets 504. "
                   "[env: BINDROP_PROXY_UPSTREAM_TIMEOUT]")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              envvar="BINDROP_PROXY_WORKERS",
              help="Worker processes sharing the listening sockets (default: one per CPU; "
                   "1: a single process). [env: BINDROP_PROXY_WORKERS]")
@click.option("--no-traffic-counts", "no_counts", is_flag=True,
              envvar="BINDROP_PROXY_NO_TRAFFIC_COUNTS",
              help="Do not count requests per app (what `bindrop metrics` and /metrics show); "
                   "for measuring what counting costs (bench/proxy.sh). "
                   "[env: BINDROP_PROXY_NO_TRAFFIC_COUNTS]")
@click.option("--log-level", default="info", show_default=True, envvar="BINDROP_LOG_LEVEL",
              type=click.Choice(["debug", "info", "warning", "error"]),
              help="How much to log (access lines always go to stdout). "
                   "[env: BINDROP_LOG_LEVEL]")
def proxy(listen: str, listen_https: str | None, hub_socket: Path | None, upstream_timeout: float,
          workers: int | None, no_counts: bool, log_level: str) -> None:
    """Run the reverse proxy in the foreground (what bindrop-proxy.service runs).

    It serves the sockets systemd passes (bindrop-proxy.socket) or binds --listen, routes
    by host to the apps the hub reports, serves its last routes while the hub is away, and
    on SIGTERM finishes the requests in flight before it exits.

    Systemd sockets named ``https`` (FileDescriptorName=https) or --listen-https serve
    HTTPS with the certificate for each hostname (SNI); the directory is checked for
    changed files every few seconds.

    With several --workers the main process keeps the sockets and runs no proxy itself:
    each worker accepts on them and follows the hub on its own; a worker that dies is
    restarted; systemd hears READY=1 once every worker serves.

    Example: BINDROP_ROOT=/srv/test bindrop proxy --listen 127.0.0.1:8080
    """
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env(os.environ)
    options = dataclasses.replace(ProxyOptions.from_settings(settings),
                                  upstream_timeout=upstream_timeout,
                                  count_traffic=not no_counts)
    if hub_socket is not None:
        options = dataclasses.replace(options, hub_socket=hub_socket)
    https = parse_listen(listen_https, "--listen-https") if listen_https else None
    sockets, https_sockets = open_sockets(options, parse_listen(listen), https)
    count = workers or default_workers()
    if count == 1:
        run_loop(_run_proxy(options, sockets, https_sockets,
                            ready=lambda: sd_notify("READY=1\nSTATUS=serving", os.environ),
                            stopping=lambda: sd_notify("STOPPING=1", os.environ)))
        return

    def worker(ready: Callable[[], None]) -> int:
        run_loop(_run_proxy(options, sockets, https_sockets, ready=ready))
        return 0

    supervisor = Supervisor(
        count, worker,
        on_ready=lambda: sd_notify(f"READY=1\nSTATUS=serving with {count} workers",
                                   os.environ),
        on_stopping=lambda: sd_notify("STOPPING=1", os.environ))
    code = supervisor.run()
    if code:
        raise SystemExit(code)


def open_sockets(options: ProxyOptions, listen: tuple[str, int],
                 listen_https: tuple[str, int] | None = None
                 ) -> tuple[list[socket.socket], list[socket.socket]]:
    """The sockets systemd passed (socket activation), else bound here: (HTTP, HTTPS)."""
    sockets, https_sockets = inherited_sockets_by_kind(os.environ)
    log = logging.getLogger("bindrop.proxy")
    if sockets or https_sockets:
        log.info("serving %d sockets passed by systemd (%d for HTTPS)",
                 len(sockets) + len(https_sockets), len(https_sockets))
        return sockets, https_sockets
    sockets = [bind_socket(*listen)]
    log.info("listening on %s:%d", *listen)
    if listen_https is not None:
        https_sockets = [bind_socket(*listen_https)]
        log.info("listening for HTTPS on %s:%d (certificates in %s)", *listen_https,
                 options.tls_dir)
    return sockets, https_sockets


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed (a third less CPU per proxied request
    here), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


async def _run_proxy(options: ProxyOptions, sockets: list[socket.socket],
                     https_sockets: list[socket.socket], *,
                     ready: Callable[[], object] = lambda: None,
                     stopping: Callable[[], object] = lambda: None) -> None:
    """One proxy process until SIGTERM or SIGINT, then a graceful stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = ProxyServer(options)
    await server.start(sockets, https_sockets)
    # Everything made so far lives as long as the process: keep it out of the cyclic GC's
    # full collections, which otherwise walk all of it again and again under load.
    gc.freeze()
    ready()
    await stop.wait()
    stopping()
    await server.close()
