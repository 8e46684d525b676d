"""``bindrop care-run KIND …``: what a care unit runs (the hub starts it; people do not).

It does the file work on the server (``bindrop.care.worker``), reports progress and the
outcome to the hub over its socket (``BINDROP_SERVER``, run ``BINDROP_CARE_RUN``), prints the
outcome to the journal, and exits 0 (done) or 1 (failed).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from bindrop.care import worker
from bindrop.care.config import load_care_settings
from bindrop.cli.remote import call
from bindrop.errors import BindropError, NotFound
from bindrop.settings import Settings

#: How long a server restore waits for the restarted hub to record its outcome.
HUB_BACK_S = 60.0


def _reporter(run: str | None) -> Callable[[dict[str, Any]], None]:
    server = os.environ.get("BINDROP_SERVER")

    def report(body: dict[str, Any]) -> None:
        if not run or not server:
            return
        try:
            call(server, os.environ.get("BINDROP_TOKEN") or None,
                 lambda c: c.request("POST", f"/v1/care/steps/{run}/report", body=body))
        except BindropError as exc:  # the work matters more than its report
            click.echo(f"warning: could not report to the hub: {exc.message}", err=True)

    return report


def _run(work: Callable[[worker.Progress], dict[str, Any]]) -> None:
    report = _reporter(os.environ.get("BINDROP_CARE_RUN"))

    def progress(text: str) -> None:
        click.echo(text)
        report({"progress": text})

    try:
        result = work(progress)
    except BindropError as exc:
        click.echo(f"error: {exc.message}", err=True)
        report({"error": exc.to_dict()["error"]})
        sys.exit(1)
    click.echo(json.dumps(result, sort_keys=True))
    report({"result": result})


def _settings() -> tuple[Settings, Any]:
    settings = Settings.from_env(os.environ)
    return settings, load_care_settings(settings, os.environ)


@click.group("care-run", hidden=True)
def care_run() -> None:
    """Run one server-care step (what the hub's care units run).

    Example: bindrop care-run backup blog
    """


@care_run.command("backup")
@click.argument("app", required=False)
def backup(app: str | None) -> None:
    """Back up the server (or APP).

    Example: bindrop care-run backup blog
    """
    settings, care = _settings()
    _run(lambda progress: worker.backup(settings, care, app, progress))


@care_run.command("verify")
@click.argument("backup_id")
def verify(backup_id: str) -> None:
    """Check a backup.

    Example: bindrop care-run verify 20261128T031500.000Z-server
    """
    _, care = _settings()
    _run(lambda progress: worker.verify(care, backup_id, progress))


@care_run.command("restore-prepare")
@click.argument("app")
@click.option("--from", "backup_id", default=None)
def restore_prepare(app: str, backup_id: str | None) -> None:
    """Check a backup and extract APP's data beside its own.

    Example: bindrop care-run restore-prepare blog --from 20261128T031500.000Z-server
    """
    _, care = _settings()
    _run(lambda progress: worker.restore_prepare(care, app, backup_id, progress))


@care_run.command("restore-swap")
@click.argument("app")
@click.argument("backup_id")
@click.argument("databases", nargs=-1)
def restore_swap(app: str, backup_id: str, databases: tuple[str, ...]) -> None:
    """Swap the prepared data in for APP's (stopped) and check it.

    Example: bindrop care-run restore-swap blog 20261128T031500.000Z-server app.db
    """
    _, care = _settings()
    _run(lambda progress: worker.restore_swap(care, app, backup_id, databases, progress))


@care_run.command("restore-discard")
@click.argument("app")
def restore_discard(app: str) -> None:
    """Remove what a restore prepared and did not use.

    Example: bindrop care-run restore-discard blog
    """
    _, care = _settings()

    def work(_progress: worker.Progress) -> dict[str, Any]:
        worker.restore_discard(care, app)
        return {"app": app}

    _run(work)


@care_run.command("server-restore")
@click.argument("backup_id", required=False)
@click.option("--run", "run_id", default=None, help="The hub's run, named in the event.")
def server_restore(backup_id: str | None, run_id: str | None) -> None:
    """Restore bindrop's database from a server backup (stops and starts bindrop.service).

    Example: bindrop care-run server-restore 20261128T031500.000Z-server
    """
    from bindrop.care.restore import list_backups
    from bindrop.moving.dbrestore import restore_database
    from bindrop.moving.importer import SystemctlHub

    settings, care = _settings()

    def work(progress: worker.Progress) -> dict[str, Any]:
        chosen = backup_id
        if chosen is None:
            servers = [b for b in list_backups(care) if b.manifest.app is None]
            if not servers:
                raise NotFound("there is no server backup; make one with `bindrop backup run`")
            chosen = servers[-1].manifest.id
        result = restore_database(settings, care, chosen, SystemctlHub(), progress)
        _record_when_back("server_restored", f"bindrop's database was restored from {chosen}; "
                          "the hub started again", {"backup": chosen, "run": run_id})
        return result

    _run(work)


def _record_when_back(kind: str, message: str, data: dict[str, Any]) -> None:
    """Record an event with the hub once it answers again (after its restart)."""
    server = os.environ.get("BINDROP_SERVER")
    if not server:
        return
    deadline = time.monotonic() + HUB_BACK_S
    while True:
        try:
            call(server, None, lambda c: c.record_event(kind, message, data=data))
            return
        except BindropError as exc:
            if time.monotonic() > deadline:
                click.echo(f"warning: the hub did not come back to record {kind}: "
                           f"{exc.message}", err=True)
                return
            time.sleep(0.5)


@care_run.command("gc")
@click.option("--dry-run", is_flag=True)
def gc(dry_run: bool) -> None:
    """Free unused blobs and backups beyond retention.

    Example: bindrop care-run gc --dry-run
    """
    settings, care = _settings()
    _run(lambda progress: worker.gc(settings, care, dry_run, progress))


@care_run.command("disk")
def disk() -> None:
    """Measure the filesystems and bindrop's parts.

    Example: bindrop care-run disk
    """
    settings, care = _settings()
    _run(lambda _progress: worker.disk(settings, care))


@care_run.command("disk-check")
@click.option("--threshold", default=None)
def disk_check(threshold: str | None) -> None:
    """Record a disk usage sample.

    Example: bindrop care-run disk-check --threshold 90
    """
    settings, care = _settings()
    _run(lambda _progress: worker.disk_check(settings, care, threshold))
