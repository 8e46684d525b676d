"""The ``bindrop`` command: a thin click front over bindrop's parts."""

from __future__ import annotations

import sys

import click

from bindrop import __version__
from bindrop.errors import BindropError


class BindropGroup(click.Group):
    """Turns a BindropError into a one-line reason on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BindropError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)


@click.group(cls=BindropGroup, context_settings={"auto_envvar_prefix": "BINDROP",
                                                  "help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bindrop")
def cli() -> None:
    """Run your own apps on your own server, as systemd units behind one proxy.

    Example: bindrop machine up --bare
    """


def _register() -> None:
    from bindrop.cli.install import install
    from bindrop.cli.machine import machine
    from bindrop.cli.server_side import hub

    cli.add_command(machine)
    cli.add_command(hub)
    cli.add_command(install)
    from bindrop.cli import apps, env, servers, tokens

    for command in (apps.create, apps.destroy, apps.list_apps, apps.status, apps.deploy,
                    apps.releases, apps.rollback, apps.start, apps.stop, apps.restart,
                    apps.logs, env.env, env.limits, tokens.token, servers.server):
        cli.add_command(command)
    from bindrop.cli.api_stdio import api_stdio

    cli.add_command(api_stdio)


_register()
