"""``bindrop proxy``: run the reverse proxy (what bindrop-proxy.service runs)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from pathlib import Path

import click

from bindrop.errors import InvalidInput
from bindrop.hub.notify import sd_notify
from bindrop.proxy.listen import bind_socket, inherited_sockets
from bindrop.proxy.server import ProxyOptions, ProxyServer
from bindrop.settings import Settings


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::]:80`` for IPv6) as a pair. Pure."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidInput(f"--listen {text!r} is not valid: use HOST:PORT such as 0.0.0.0:80")
    return host.strip("[]") or "0.0.0.0", int(port)


@click.command()
@click.option("--listen", default="0.0.0.0:80", show_default=True,
              envvar="BINDROP_PROXY_LISTEN",
              help="Where to listen when systemd passes no socket (socket activation). "
                   "[env: BINDROP_PROXY_LISTEN]")
@click.option("--hub-socket", type=click.Path(path_type=Path), default=None,
              envvar="BINDROP_PROXY_HUB_SOCKET",
              help="The hub's control socket (default: /run/bindrop/control.sock under "
                   "BINDROP_ROOT). [env: BINDROP_PROXY_HUB_SOCKET]")
@click.option("--upstream-timeout", type=float, default=60.0, show_default=True,
              envvar="BINDROP_PROXY_UPSTREAM_TIMEOUT",
              help="Seconds an app has to start answering before the visitor gets 504. "
                   "[env: BINDROP_PROXY_UPSTREAM_TIMEOUT]")
@click.option("--log-level", default="info", show_default=True, envvar="BINDROP_LOG_LEVEL",
              type=click.Choice(["debug", "info", "warning", "error"]),
              help="How much to log (access lines always go to stdout). "
                   "[env: BINDROP_LOG_LEVEL]")
def proxy(listen: str, hub_socket: Path | None, upstream_timeout: float,
          log_level: str) -> None:
    """Run the reverse proxy in the foreground (what bindrop-proxy.service runs).

    It serves the sockets systemd passes (bindrop-proxy.socket) or binds --listen, routes
    by host to the apps the hub reports, serves its last routes while the hub is away, and
    on SIGTERM finishes the requests in flight before it exits.

    Example: BINDROP_ROOT=/srv/test bindrop proxy --listen 127.0.0.1:8080
    """
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env(os.environ)
    options = dataclasses.replace(ProxyOptions.from_settings(settings),
                                  upstream_timeout=upstream_timeout)
    if hub_socket is not None:
        options = dataclasses.replace(options, hub_socket=hub_socket)
    asyncio.run(_run_proxy(options, parse_listen(listen)))


async def _run_proxy(options: ProxyOptions, listen: tuple[str, int]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sockets = inherited_sockets(os.environ)
    log = logging.getLogger("bindrop.proxy")
    if sockets:
        log.info("serving %d sockets passed by systemd", len(sockets))
    else:
        sockets = [bind_socket(*listen)]
        log.info("listening on %s:%d", *listen)
    server = ProxyServer(options)
    await server.start(sockets)
    sd_notify("READY=1\nSTATUS=serving", os.environ)
    await stop.wait()
    sd_notify("STOPPING=1", os.environ)
    await server.close()
