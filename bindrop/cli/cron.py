"""``bindrop cron add|list|rm``: an app's scheduled jobs, run by systemd timers."""

from __future__ import annotations

from typing import Any

import click

from bindrop.cli.remote import emit, json_option, remote, table


@click.group()
def cron() -> None:
    """Run an app's current release on a schedule (systemd timers owned by the hub).

    Example: bindrop cron add blog daily -- ./blog prune --days 30
    """


@cron.command("add")
@click.argument("app")
@click.argument("schedule")
@click.argument("args", nargs=-1, required=True)
@click.option("--name", metavar="NAME", help="The job's name (default: job1, job2, …).")
@json_option
@remote
def add(app: str, schedule: str, args: tuple[str, ...], name: str | None, as_json: bool,
        run: Any) -> None:
    """Run APP's current release with ARGS on SCHEDULE, a systemd calendar spec (daily,
    hourly, '*-*-* 03:00', 'Mon..Fri 09:00'), with the app's env and data directory. A run
    still going when the next is due makes systemd skip that one.

    Example: bindrop cron add blog daily --name prune -- prune --days 30
    """
    emit(run(lambda c: c.add_cron_job(app, schedule, list(args), name=name)), as_json,
         lambda job: f"job {job['name']} of {app}: {' '.join(job['args'])} "
                     f"on {job['schedule']}")


@cron.command("list")
@click.argument("app")
@json_option
@remote
def list_jobs(app: str, as_json: bool, run: Any) -> None:
    """List APP's scheduled jobs.

    Example: bindrop cron list blog --json
    """
    emit(run(lambda c: c.cron_jobs(app)), as_json, lambda jobs: _print_jobs(app, jobs))


def _print_jobs(app: str, jobs: list[dict[str, Any]]) -> None:
    if not jobs:
        click.echo(f"{app} has no jobs; add one with `bindrop cron add {app} daily -- ARGS`")
        return
    table(["NAME", "SCHEDULE", "ARGS"],
          [[j["name"], j["schedule"], " ".join(j["args"])] for j in jobs])


@cron.command("rm")
@click.argument("app")
@click.argument("name")
@json_option
@remote
def remove(app: str, name: str, as_json: bool, run: Any) -> None:
    """Remove APP's job NAME (stops a run in progress).

    Example: bindrop cron rm blog prune
    """
    emit(run(lambda c: c.remove_cron_job(app, name)), as_json,
         lambda _: f"removed job {name} of {app}")
