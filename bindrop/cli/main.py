"""The ``bindrop`` command: a thin click front over bindrop's parts."""

from __future__ import annotations

import sys

import click

from bindrop.cli.lazy import LazyGroup
from bindrop.errors import BindropError


class BindropGroup(LazyGroup):
    """Loads each command's module only when that command runs (a CLI call stays fast), and
    turns a BindropError into a one-line reason on stderr and a non-zero exit."""

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


#: Every command, as "module:attribute": imported when used. The server's own entry points
#: are in bindrop.serve (named here only, never imported by the CLI).
COMMANDS = {
    "machine": "bindrop.serve.machine:machine",
    "hub": "bindrop.serve.hub:hub",
    "install": "bindrop.serve.install:install",
    "proxy": "bindrop.serve.proxy:proxy",
    "api-stdio": "bindrop.serve.api_stdio:api_stdio",
    "create": "bindrop.cli.apps:create",
    "update": "bindrop.cli.apps:update",
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
    "migrate": "bindrop.serve.moving:migrate",
    "dashboard": "bindrop.cli.dashboard:dashboard",
    "backup": "bindrop.cli.backup:backup",
    "disk": "bindrop.cli.disk:disk",
    "gc": "bindrop.cli.disk:gc",
    "cron": "bindrop.cli.cron:cron",
    "care-run": "bindrop.serve.care_run:care_run",
    "alerts": "bindrop.cli.alerts:alerts",
    "bucket": "bindrop.cli.bucket:bucket",
    "tls": "bindrop.cli.tls:tls",
    "metrics": "bindrop.cli.metrics:metrics",
    "top": "bindrop.cli.metrics:top",
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
