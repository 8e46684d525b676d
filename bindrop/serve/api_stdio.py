"""``bindrop api-stdio``: the server's end of the SSH transport (see bindrop.client.ssh)."""

from __future__ import annotations

import os

import click

from bindrop.client.ssh import pipe_stdio
from bindrop.settings import Settings


@click.command(name="api-stdio")
@click.option("--socket", "socket_path", metavar="PATH",
              help="The control socket (default: the one of this server's settings).")
def api_stdio(socket_path: str | None) -> None:
    """Connect stdin and stdout to the control socket (what `ssh://` servers run).

    A client with `--server ssh://root@host` runs this over ssh and speaks the API through
    it, so no port needs opening. Not for people to run.

    Example: ssh root@my-vps bindrop api-stdio
    """
    pipe_stdio(socket_path or str(Settings.from_env(os.environ).control_socket))
