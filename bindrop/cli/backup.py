"""``bindrop backup run|list|show|restore|verify``: consistent backups of every SQLite database,
on the server named by ``--server`` (the hub runs each as a systemd unit there).

Each outcome is an event in the hub, so ``bindrop status`` and the dashboard show the last
backup and failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from bindrop.cli.care_common import follow, wait_option
from bindrop.cli.remote import emit_json, json_option, remote, size_text, table
from bindrop.units import validate_app_name

Run = Callable[..., Any]


@click.group()
def backup() -> None:
    """Back up and restore bindrop's database and every app's data, on the server.

    Example: bindrop backup run --server prod
    """


@backup.command("run")
@click.argument("app", required=False)
@wait_option
@json_option
@remote
def run_cmd(app: str | None, queue: bool, as_json: bool, run: Run) -> None:
    """Back up bindrop's database and every app's data (or only APP's), then apply retention.

    The hub runs it as a systemd unit on the server (journalctl BINDROP_CARE=backup):
    SQLite databases are copied with the online backup API while apps keep writing; the rest
    of each data directory is archived; parts are compressed and listed in a manifest with
    sizes and sha256. Local folder: BINDROP_BACKUP_DIR (/var/backups/bindrop); a bucket when
    BINDROP_S3_BUCKET is set (in /etc/bindrop/care.env on the server).

    Example: bindrop backup run blog --json
    """
    if app is not None:
        validate_app_name(app)
    result = run(lambda c: follow(c, lambda c: c.start_backup(app, queue=queue), as_json))
    if as_json:
        emit_json(result)
        return
    click.echo(f"backup {result['id']}: {len(result.get('apps', []))} apps, "
               f"{size_text(result.get('size'))}"
               + (", uploaded" if result.get("uploaded") else ""))
    for backup_id in result.get("deleted", []):
        click.echo(f"deleted {backup_id} (retention)")


@backup.command("list")
@click.argument("app", required=False)
@json_option
@remote
def list_cmd(app: str | None, as_json: bool, run: Run) -> None:
    """List complete backups on the server (local and in its bucket), oldest first; with
    APP, those holding APP's data.

    Example: bindrop backup list blog
    """
    if app is not None:
        validate_app_name(app)
    listed = run(lambda c: c.backups(app))
    if as_json:
        emit_json(listed)
        return
    if not listed:
        click.echo("no backups yet; make one with `bindrop backup run`")
        return
    table(["ID", "SIZE", "APPS", "WHERE"],
          [[b["id"], size_text(b["size"]), ", ".join(b["apps"]) or "-", ", ".join(b["where"])]
           for b in listed])


@backup.command("show")
@click.argument("backup_id", metavar="ID")
@json_option
@remote
def show_cmd(backup_id: str, as_json: bool, run: Run) -> None:
    """Show backup ID's manifest: its parts, their sizes and sha256, where it is stored.

    Example: bindrop backup show 20261128T031500.000Z-server
    """
    shown = run(lambda c: c.backup(backup_id))
    if as_json:
        emit_json(shown)
        return
    click.echo(f"backup {shown['id']} of {shown['created_at']}: {size_text(shown['size'])}, "
               f"stored {', '.join(shown['where']) or '-'}")
    table(["PART", "SIZE", "APP", "DATABASES", "SHA256"],
          [[p["name"], size_text(p["size"]), p.get("app") or "bindrop",
            ", ".join(p.get("databases") or []) or "-", p["sha256"][:16]]
           for p in shown["parts"]])


@backup.command("verify")
@click.argument("backup_id", metavar="ID")
@wait_option
@json_option
@remote
def verify_cmd(backup_id: str, queue: bool, as_json: bool, run: Run) -> None:
    """Check backup ID on the server: every part's size and sha256, and integrity_check of
    every database. Exits 1 when anything is wrong.

    Example: bindrop backup verify 20261128T031500.000Z-server
    """
    result = run(lambda c: follow(c, lambda c: c.verify_backup(backup_id, queue=queue),
                                  as_json))
    if as_json:
        emit_json(result)
    else:
        click.echo(f"backup {backup_id} is intact")


@backup.command("restore")
@click.argument("app")
@click.option("--from", "backup_id", metavar="ID",
              help="The backup to restore (default: the newest holding APP's data).")
@wait_option
@json_option
@remote
def restore_cmd(app: str, backup_id: str | None, queue: bool, as_json: bool,
                run: Run) -> None:
    """Restore APP's data on the server from a backup: check it, stop APP, swap the data in,
    check every database with integrity_check, start APP again (if it was running).

    A damaged backup, or one of another app, is refused before APP is touched. The restore
    waits its turn behind APP's other actions (a deploy in progress).

    Example: bindrop backup restore blog --from 20261128T031500.000Z-server
    """
    validate_app_name(app)
    result = run(lambda c: follow(c, lambda c: c.restore(app, backup_id, queue=queue),
                                  as_json))
    if as_json:
        emit_json({"app": app, "backup": result.get("backup"),
                   "started": bool(result.get("started"))})
    else:
        click.echo(str(result.get("message")))
