"""``bindrop server add|list|remove``: named servers in the user's config."""

from __future__ import annotations

import os

import click

from bindrop.cli.moving import export_cmd, import_cmd, setup
from bindrop.cli.remote import emit_json, json_option, table
from bindrop.cli.restore import restore_cmd
from bindrop.client.servers import SavedServer, load_servers, remove_server, save_server


@click.group()
def server() -> None:
    """Servers saved by name, to use as --server NAME; set up, export and import one.

    Example: bindrop server add prod https://bindrop.example.com --token "$T"
    """


server.add_command(setup)
server.add_command(export_cmd)
server.add_command(import_cmd)
server.add_command(restore_cmd)


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
