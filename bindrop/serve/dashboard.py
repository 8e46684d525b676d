"""``bindrop dashboard serve``: the dashboard's process (what its system app's unit runs)."""

from __future__ import annotations

import logging

import click

SHUTDOWN_TIMEOUT_S = 3.0


@click.command()
@click.option("--server", "-s", envvar="BINDROP_SERVER", required=True, metavar="URL",
              help="The control API, http(s)://host:port (the hub's TCP listener). "
                   "[env: BINDROP_SERVER]")
@click.option("--listen", default="127.0.0.1", show_default=True,
              envvar="BINDROP_DASHBOARD_LISTEN",
              help="Address to listen on. [env: BINDROP_DASHBOARD_LISTEN]")
@click.option("--port", type=click.IntRange(1, 65535), envvar=["PORT", "BINDROP_DASHBOARD_PORT"],
              required=True,
              help="Port to listen on; the hub gives a system app its own. "
                   "[env: PORT, BINDROP_DASHBOARD_PORT]")
def serve(server: str, listen: str, port: int) -> None:
    """Serve the dashboard (what the dashboard's unit runs; rarely run by hand).

    It holds no token: people log in with theirs, and every page is made with it.

    Example: bindrop dashboard serve --server http://127.0.0.1:7300 --port 8080
    """
    from aiohttp import web

    from bindrop.dashboard import make_dashboard_app

    if not server.startswith(("http://", "https://")):
        raise click.BadParameter(f"use the control API's http(s):// address, not {server!r}",
                                 param_hint="--server")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    # aiohttp's access log would record every path; the pages log what matters themselves.
    # handler_cancellation: a browser that goes away ends its live streams (and so the
    # dashboard's own streams from the hub) at once, not at the next event.
    web.run_app(make_dashboard_app(server), host=listen, port=port, access_log=None,
                shutdown_timeout=SHUTDOWN_TIMEOUT_S, handler_cancellation=True, print=None)
