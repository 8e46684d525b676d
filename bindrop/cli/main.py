"""The ``bindrop`` command: a thin click front over bindrop's parts."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from bindrop.errors import BindropError


class BindropGroup(click.Group):
    """Loads each command's module only when that command runs (a CLI call stays fast), and
    turns a BindropError into a one-line reason on stderr and a non-zero exit."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, _, attr = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BindropError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)


def _print_version(ctx: click.Context, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from bindrop.version import version_text

        click.echo(f"bindrop {version_text()}")
        ctx.exit()


#: Every command, as "module:attribute": imported when used.
COMMANDS = {
    "machine": "bindrop.cli.machine:machine",
    "hub": "bindrop.cli.server_side:hub",
    "install": "bindrop.cli.install:install",
    "proxy": "bindrop.cli.proxy_cmd:proxy",
    "api-stdio": "bindrop.cli.api_stdio:api_stdio",
    "create": "bindrop.cli.apps:create",
    "destroy": "bindrop.cli.apps:destroy",
    "apps": "bindrop.cli.apps:list_apps",
    "status": "bindrop.cli.apps:status",
    "deploy": "bindrop.cli.apps:deploy",
    "releases": "bindrop.cli.apps:releases",
    "rollback": "bindrop.cli.apps:rollback",
    "start": "bindrop.cli.apps:start",
    "stop": "bindrop.cli.apps:stop",
    "restart": "bindrop.cli.apps:restart",
    "logs": "bindrop.cli.apps:logs",
    "scale": "bindrop.cli.apps:scale",
    "run": "bindrop.cli.apps:run_command",
    "env": "bindrop.cli.env:env",
    "limits": "bindrop.cli.env:limits",
    "token": "bindrop.cli.tokens:token",
    "server": "bindrop.cli.servers:server",
    "migrate": "bindrop.cli.moving:migrate",
    "dashboard": "bindrop.cli.dashboard:dashboard",
    "backup": "bindrop.cli.backup:backup",
    "disk": "bindrop.cli.disk:disk",
    "gc": "bindrop.cli.disk:gc",
    "cron": "bindrop.cli.cron:cron",
    "care-run": "bindrop.cli.care_run:care_run",
    "alerts": "bindrop.cli.alerts:alerts",
}


@click.group(cls=BindropGroup, lazy=COMMANDS,
             context_settings={"auto_envvar_prefix": "BINDROP",
                               "help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=lambda ctx, _param, value: _print_version(ctx, value),
              help="Show the version (and the commit it was built from) and exit.")
def cli() -> None:
    """Run your own apps on your own server, as systemd units behind one proxy.

    Example: bindrop machine up --bare
    """
