"""``bindrop disk``, ``bindrop disk check`` and ``bindrop gc``: the server's disk, and freeing
space on it (the hub measures and collects in systemd units on the server)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from bindrop.cli.care_common import follow, wait_option
from bindrop.cli.remote import emit, emit_json, json_option, remote, table
from bindrop.domain.sizes import format_bytes

Run = Callable[..., Any]


@click.group(invoke_without_command=True)
@json_option
@remote
@click.pass_context
def disk(ctx: click.Context, as_json: bool, run: Run) -> None:
    """Show the server's filesystems holding bindrop's data and what bindrop's parts use:
    blobs, the database, each app's data, backups, the journal.

    Example: bindrop disk --json
    """
    if ctx.invoked_subcommand is not None:
        return
    report = run(lambda c: c.disk())
    if as_json:
        emit_json(report)
        return
    table(["FILESYSTEM", "SIZE", "USED", "FREE", "USE%", "HOLDS"],
          [[f["mount"], format_bytes(f["total"]), format_bytes(f["used"]), format_bytes(f["free"]),
            f"{f['percent']:.0f}%", ", ".join(f["holds"])] for f in report["filesystems"]])
    click.echo()
    table(["PART", "SIZE"],
          [*([name, format_bytes(size)] for name, size in report["parts"].items()
             if name != "apps"),
           *([f"app {name}", format_bytes(size)] for name, size in report["apps"].items())])


@disk.command("check")
@click.option("--threshold", metavar="PERCENT", envvar="BINDROP_DISK_THRESHOLD",
              help="Over this usage the check is an event and an alert (default 85, or "
                   "BINDROP_DISK_THRESHOLD on the server). [env: BINDROP_DISK_THRESHOLD]")
@json_option
@remote
def check(threshold: str | None, as_json: bool, run: Run) -> None:
    """Record a usage sample on the server; going over the threshold (or back under it) is
    an event and an alert, once per change. What bindrop-disk.timer runs every 15 minutes.

    Example: bindrop disk check --threshold 90
    """
    result = run(lambda c: c.disk_check(threshold))
    if as_json:
        emit_json(result)
        return
    for f in result["filesystems"]:
        mark = "  OVER THRESHOLD" if f["mount"] in result["over"] else ""
        click.echo(f"{f['mount']}: {f['percent']:.0f}% used ({format_bytes(f['free'])} free)"
                   f"{mark}")


@click.command()
@click.option("--dry-run", is_flag=True, help="Only say what would be freed.")
@wait_option
@json_option
@remote
def gc(dry_run: bool, queue: bool, as_json: bool, run: Run) -> None:
    """Free what bindrop can on the server: blobs no release uses (older than an hour),
    backups beyond retention, leftovers of failed backups; says how much.

    Example: bindrop gc --dry-run
    """
    freed = run(lambda c: follow(c, lambda c: c.gc(dry_run=dry_run, queue=queue), as_json))
    emit(freed, as_json, lambda f: f"gc {'would free' if dry_run else 'freed'} "
                                   f"{format_bytes(f.get('total_bytes'))}: {f.get('blobs')} "
                                   f"blobs, {len(f.get('backups') or [])} backups")
