"""What every command that talks to a server shares: which server, the token, ``--json``,
running the client, and printing for people or for programs."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shlex
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import click

from bindrop.client.client import Client
from bindrop.client.servers import DEFAULT_SERVER, resolve_server

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def server_options(command: F) -> F:
    """``--server`` and ``--token`` (with ``BINDROP_SERVER`` / ``BINDROP_TOKEN``)."""
    command = click.option(
        "--server", "-s", envvar="BINDROP_SERVER", metavar="URL|NAME",
        help=f"unix:/path, http(s)://host[:port], ssh://user@host or a saved name (default: "
             f"{DEFAULT_SERVER}). [env: BINDROP_SERVER; for ssh also BINDROP_SSH, the ssh "
             "command, and BINDROP_REMOTE_COMMAND, how the server runs bindrop]")(command)
    return click.option(
        "--token", envvar="BINDROP_TOKEN", metavar="TOKEN",
        help="API token for a TCP server. [env: BINDROP_TOKEN]")(command)


def json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)


def call(server: str | None, token: str | None,
         action: Callable[[Client], Awaitable[T]]) -> T:
    """Run ``action`` with a client of the chosen server; errors reach the group's handler
    (one line on stderr, exit 1)."""
    endpoint, token = resolve_server(server, token, os.environ)
    ssh = shlex.split(os.environ.get("BINDROP_SSH") or "ssh")
    remote = shlex.split(os.environ.get("BINDROP_REMOTE_COMMAND") or "bindrop")

    async def run() -> T:
        async with Client(endpoint, token, ssh=ssh, remote=remote) as client:
            return await action(client)

    return asyncio.run(run())


def remote(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command ``--server``/``--token`` and pass it a ``run(action)`` instead."""

    @functools.wraps(command)
    def wrapper(*args: Any, server: str | None, token: str | None, **kwargs: Any) -> Any:
        def run(action: Callable[[Client], Awaitable[T]]) -> T:
            return call(server, token, action)

        return command(*args, run=run, **kwargs)

    return server_options(wrapper)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def emit(data: T, as_json: bool, for_people: Callable[[T], str | None]) -> None:
    """``data`` as JSON (``--json``), or as ``for_people`` shows it: it prints it (a table,
    several lines) or returns the one line to print."""
    if as_json:
        emit_json(data)
        return
    line = for_people(data)
    if line is not None:
        click.echo(line)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain aligned table for people."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r]
                                           for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
