"""``bindrop server add|list|remove``: named servers in the user's config."""

from __future__ import annotations

import os

import click

from bindrop.cli.lazy import LazyGroup
from bindrop.cli.remote import emit_json, json_option, table
from bindrop.client.servers import SavedServer, load_servers, remove_server, save_server

#: What runs on the server's own files, or sets one up over SSH (bindrop.serve).
SERVER_SIDE = {
    "setup": "bindrop.serve.moving:setup",
    "export": "bindrop.serve.moving:export_cmd",
    "import": "bindrop.serve.moving:import_cmd",
    "restore": "bindrop.serve.restore:restore_cmd",
}


@click.group(cls=LazyGroup, lazy=SERVER_SIDE)
def server() -> None:
    """Servers saved by name, to use as --server NAME; set up, export and import one.

    Example: bindrop server add prod https://bindrop.example.com --token "$T"
    """


@server.command()
@click.argument("name")
@click.argument("url")
@click.option("--token", envvar="BINDROP_TOKEN", help="Token to send to it (saved, 0600).")
def add(name: str, url: str, token: str | None) -> None:
    """Save URL under NAME (replacing one of that name).

    Example: bindrop server add local unix:/run/bindrop/control.sock
    """
    path = save_server(os.environ, SavedServer(name, url, token))
    click.echo(f"saved {name} in {path}; use it with --server {name}")


@server.command(name="list")
@json_option
def list_servers(as_json: bool) -> None:
    """List saved servers (tokens are not shown).

    Example: bindrop server list
    """
    servers = load_servers(os.environ)
    if as_json:
        emit_json([{"name": s.name, "url": s.url, "token": bool(s.token)}
                   for s in servers.values()])
        return
    table(["NAME", "URL", "TOKEN"],
          [[s.name, s.url, "yes" if s.token else "no"] for s in servers.values()])


@server.command()
@click.argument("name")
def remove(name: str) -> None:
    """Forget the saved server NAME.

    Example: bindrop server remove prod
    """
    remove_server(os.environ, name)
    click.echo(f"removed {name}")
