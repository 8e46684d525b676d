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
from bindrop.proxy.certs import new_server_context
from bindrop.proxy.limits import Limits
from bindrop.proxy.listen import bind_socket, inherited_sockets_by_kind
from bindrop.proxy.server import ProxyOptions, ProxyServer
from bindrop.proxy.trusted import parse_trusted_proxies
from bindrop.proxy.workers import WorkerPool, default_workers
from bindrop.settings import Settings


def parse_listen(text: str, option: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT`` (``[::]:80`` for IPv6) as a pair. Pure."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidInput(f"{option} {text!r} is not valid: use HOST:PORT such as 0.0.0.0:80")
    return host.strip("[]") or "0.0.0.0", int(port)


#: The ``bindrop proxy`` option of each of ``Limits``' fields: (help, type).
LIMIT_OPTIONS: dict[str, tuple[str, type]] = {
    "request_head_timeout": ("Seconds a request head may take from its first byte (and a new "
                             "connection until its first head); then 408 and close.", float),
    "keepalive_timeout": ("Seconds a kept-alive connection may wait for its next request.",
                          float),
    "upload_idle_timeout": ("Seconds an upload may pass without a byte (either the visitor "
                            "not sending or the app not reading); the upload itself may take "
                            "as long as it flows.", float),
    "answer_idle_timeout": ("Seconds an app may go silent in the middle of an answer's body.",
                            float),
    "visitor_idle_timeout": ("Seconds a visitor may read nothing of its answer.", float),
    "tunnel_idle_timeout": ("Seconds a WebSocket tunnel or a server-sent events stream may be "
                            "silent both ways.", float),
    "max_head_size": ("Bytes of a request's line and headers together (431 past it).", int),
    "max_headers": ("Header fields in one request (431 past it).", int),
    "max_connections": ("Visitor connections per worker; more get 503 and are closed.", int),
}


def limit_options(command: Callable[..., None]) -> Callable[..., None]:
    """Adds an option (with its BINDROP_PROXY_* twin and its default in --help) for each
    named timeout and limit."""
    defaults = Limits()
    for name, (text, kind) in reversed(LIMIT_OPTIONS.items()):
        env = f"BINDROP_PROXY_{name.upper()}"
        command = click.option(
            "--" + name.replace("_", "-"), name, default=getattr(defaults, name),
            show_default=True, envvar=env,
            type=click.FloatRange(min=0.001) if kind is float else click.IntRange(min=1),
            help=f"{text} [env: {env}]")(command)
    return command


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
              help="Seconds an app has to start answering (its answer head), counted once "
                   "the request is fully sent; then 504. [env: BINDROP_PROXY_UPSTREAM_TIMEOUT]")
@click.option("--trusted-proxies", default="", envvar="BINDROP_TRUSTED_PROXIES",
              help="Load balancers or CDNs in front of this proxy, as CIDR,… (e.g. "
                   "10.0.0.0/8,2001:db8::/32): only from those is an incoming "
                   "X-Forwarded-For / Forwarded chain kept and the visitor taken from it. "
                   "Default: none (the proxy is the edge). [env: BINDROP_TRUSTED_PROXIES]")
@limit_options
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
          trusted_proxies: str, workers: int | None, no_counts: bool, log_level: str,
          **limits: Any) -> None:
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
    try:
        trusted = tuple(str(net) for net in parse_trusted_proxies(trusted_proxies))
    except InvalidInput as exc:
        raise click.BadParameter(exc.message, param_hint="--trusted-proxies") from None
    options = dataclasses.replace(ProxyOptions.from_settings(settings),
                                  upstream_timeout=upstream_timeout, limits=Limits(**limits),
                                  count_traffic=not no_counts)
    if trusted:
        options = dataclasses.replace(options, trusted_proxies=trusted)
    if hub_socket is not None:
        options = dataclasses.replace(options, hub_socket=hub_socket)
    https = parse_listen(listen_https, "--listen-https") if listen_https else None
    sockets, https_sockets = open_sockets(options, parse_listen(listen), https)
    count = workers or default_workers()
    if https_sockets:
        # Made before the fork: every worker has its ticket keys, so a returning visitor
        # resumes on whichever worker the kernel gives the connection to.
        options = dataclasses.replace(options, tls_front=new_server_context())
    if count == 1:
        run_loop(_run_proxy(options, sockets, https_sockets,
                            ready=lambda: sd_notify("READY=1\nSTATUS=serving", os.environ),
                            stopping=lambda: sd_notify("STOPPING=1", os.environ)))
        return

    def worker(ready: Callable[[], None]) -> int:
        run_loop(_run_proxy(options, sockets, https_sockets, ready=ready))
        return 0

    pool = WorkerPool(
        count, worker,
        on_ready=lambda: sd_notify(f"READY=1\nSTATUS=serving with {count} workers",
                                   os.environ),
        on_stopping=lambda: sd_notify("STOPPING=1", os.environ))
    code = pool.run()
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
