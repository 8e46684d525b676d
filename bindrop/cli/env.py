"""``bindrop env set|unset|list`` and ``bindrop limits``: settings of an app's units; a
change restarts a running app with no downtime."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from bindrop.cli.remote import emit, emit_json, json_option, remote
from bindrop.domain.sizes import format_bytes

Run = Callable[..., Any]
NONE = ("none", "off", "unlimited")


@click.group()
def env() -> None:
    """An app's environment variables (a change restarts the app with no downtime).

    Example: bindrop env set blog DATABASE_URL=postgres://db/blog
    """


def _restarted(result: dict[str, Any]) -> str:
    return " (restarted)" if result.get("restarted") else ""


@env.command(name="set")
@click.argument("app")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@json_option
@remote
def set_env(app: str, assignments: tuple[str, ...], as_json: bool, run: Run) -> None:
    """Set variables of APP.

    Example: bindrop env set blog DEBUG=1 API_KEY=s3cret
    """
    values = {}
    for item in assignments:
        key, eq, value = item.partition("=")
        if not eq:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="KEY=VALUE")
        values[key] = value
    emit(run(lambda c: c.set_env(app, values)), as_json,
         lambda result: f"set {', '.join(values)} on {app}{_restarted(result)}")


@env.command(name="unset")
@click.argument("app")
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@json_option
@remote
def unset_env(app: str, keys: tuple[str, ...], as_json: bool, run: Run) -> None:
    """Remove variables of APP.

    Example: bindrop env unset blog DEBUG
    """
    emit(run(lambda c: c.unset_env(app, list(keys))), as_json,
         lambda result: f"unset {', '.join(keys)} on {app}{_restarted(result)}")


@env.command(name="list")
@click.argument("app")
@click.option("--reveal", is_flag=True, help="Show values of secret-looking keys too (admin).")
@json_option
@remote
def list_env(app: str, reveal: bool, as_json: bool, run: Run) -> None:
    """Show APP's variables; secret-looking values are masked unless --reveal.

    Example: bindrop env list blog --reveal
    """
    emit(run(lambda c: c.env(app, reveal=reveal))["env"], as_json, _print_env)


def _print_env(env: dict[str, str]) -> None:
    for key, value in env.items():
        click.echo(f"{key}={value}")


def _limit(value: str | None) -> object:
    if value is None:
        return None
    return None if value.lower() in NONE else value


@click.command()
@click.argument("app")
@click.option("--memory", metavar="SIZE", help='Memory limit such as 256M ("none" removes it).')
@click.option("--cpu", metavar="QUOTA", help='CPU quota such as 50% or 2 ("none" removes it).')
@click.option("--tasks", metavar="N", help='Most processes + threads ("none" removes it).')
@json_option
@remote
def limits(app: str, memory: str | None, cpu: str | None, tasks: str | None, as_json: bool,
           run: Run) -> None:
    """Show or change APP's limits (a change restarts it with no downtime).

    Example: bindrop limits blog --memory 512M --cpu 150%
    """
    changes = {key: _limit(value) for key, value in
               (("memory_max", memory), ("cpu_quota", cpu), ("tasks_max", tasks))
               if value is not None}
    if changes:
        result = run(lambda c: c.set_limits(app, changes))
        config = result["app"]
    else:
        result = config = run(lambda c: c.app(app))
    if as_json:
        emit_json({k: config[k] for k in ("memory_max", "cpu_quota", "tasks_max")})
        return
    click.echo(f"memory: {format_bytes(config['memory_max']) if config['memory_max'] else 'none'}")
    click.echo(f"cpu:    {str(config['cpu_quota']) + '%' if config['cpu_quota'] else 'none'}")
    click.echo(f"tasks:  {config['tasks_max'] or 'none'}")
    if changes and result.get("restarted"):
        click.echo(f"{app} restarted with the new limits")
