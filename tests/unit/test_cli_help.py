"""Every command has help with an example (sqlite-utils' test_commands_have_help)."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from bindrop.cli.main import cli


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(cli))


def test_the_walk_finds_the_app_commands() -> None:
    names = {" ".join(p) for p in COMMANDS}
    assert {"deploy", "update", "env set", "token create", "server add", "logs",
            "hub"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "bindrop" for p in COMMANDS])
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output


# Commands that run on the server itself or only touch local config take no --server.
LOCAL = ("machine", "hub", "install", "proxy", "server", "api-stdio", "care-run")
# Server-side commands inside a group of remote ones: the dashboard's server holds no token.
SERVER_SIDE = (("dashboard", "serve"),)


def _talks_to_a_server(path: tuple[str, ...]) -> bool:
    if not path or path[0] in LOCAL or path in SERVER_SIDE:
        return False
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        sub = command.get_command(click.Context(command), name)
        assert sub is not None
        command = sub
    return not isinstance(command, click.Group)


REMOTE = [p for p in COMMANDS if _talks_to_a_server(p)]


@pytest.mark.parametrize("path", REMOTE, ids=[" ".join(p) for p in REMOTE])
def test_every_command_that_talks_to_a_server_takes_server_and_token(
    path: tuple[str, ...],
) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert "--server" in result.output and "--token" in result.output
