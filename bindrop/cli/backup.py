"""``bindrop backup run|list|show|restore|verify``: consistent backups of every SQLite database,
on the server named by ``--server`` (the hub runs each as a systemd unit there).

Each outcome is an event in the hub, so ``bindrop status`` and the dashboard show the last
backup and failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import click

from bindrop.cli.care_common import follow, wait_option
from bindrop.cli.remote import emit, emit_json, json_option, remote, table
from bindrop.client.client import Client, RemoteError
from bindrop.domain.names import validate_app_name
from bindrop.domain.sizes import format_bytes

Run = Callable[..., Any]
#: How long a restore of the server's database may take, hub restart included.
SERVER_RESTORE_S = 300.0


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
               f"{format_bytes(result.get('size'))}"
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
          [[b["id"], format_bytes(b["size"]), ", ".join(b["apps"]) or "-", ", ".join(b["where"])]
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
    click.echo(f"backup {shown['id']} of {shown['created_at']}: {format_bytes(shown['size'])}, "
               f"stored {', '.join(shown['where']) or '-'}")
    table(["PART", "SIZE", "APP", "DATABASES", "SHA256"],
          [[p["name"], format_bytes(p["size"]), p.get("app") or "bindrop",
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
    emit(result, as_json, lambda _: f"backup {backup_id} is intact")


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


@backup.command("restore-server")
@click.option("--from", "backup_id", metavar="ID",
              help="The server backup to restore (default: the newest).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (--json implies it).")
@json_option
@remote
def restore_server_cmd(backup_id: str | None, yes: bool, as_json: bool, run: Run) -> None:
    """Restore bindrop's own database on the server from a server backup: the backup is
    checked (sha256, integrity_check, schema), then the hub stops (apps keep running), the
    database is swapped in (this server's tokens kept), and the hub starts again and
    re-attaches to the running apps. Apps, releases, env and events become the backup's.

    Example: bindrop backup restore-server --from 20261128T031500.000Z-server --yes
    """
    if not yes and not as_json:
        click.confirm("Replace bindrop's database (apps, releases, env, events) on the server "
                      f"with {backup_id or 'the newest server backup'}'s?", abort=True)
    emit(run(lambda c: _restore_server(c, backup_id, as_json)), as_json,
         lambda result: result["message"])


async def _restore_server(client: Client, backup_id: str | None,
                          quiet: bool) -> dict[str, Any]:
    """Start the restore, follow it while this hub answers, then wait for the restarted hub
    to record ``server_restored``."""
    started = await client.restore_server(backup_id)
    shown = ""
    deadline = time.monotonic() + SERVER_RESTORE_S
    while time.monotonic() < deadline:
        try:
            run = await client.care_run(str(started["id"]))
        except RemoteError:
            break  # the hub is restarting: the run is gone with it
        if not quiet and run.get("progress") and run["progress"] != shown:
            shown = run["progress"]
            click.echo(f"server-restore {run['id']}: {shown}", err=True)
        if run["state"] == "failed":
            error = run.get("error") or {}
            raise RemoteError(str(error.get("message")), status=500,
                              code=str(error.get("code", "failed")))
        await asyncio.sleep(0.5)
    while time.monotonic() < deadline:
        try:
            events = await client.history(limit=20)
        except RemoteError:
            events = []
        # Event ids start again from the restored database's: match the run instead.
        done = [e for e in events if e["kind"] == "server_restored"
                and (e.get("data") or {}).get("run") == started["id"]]
        if done:
            return {"backup": done[-1]["data"]["backup"], "message": done[-1]["message"]}
        await asyncio.sleep(0.5)
    raise RemoteError("the server did not say the restore ended; see `journalctl "
                      "BINDROP_CARE=server-restore` on the server", status=504, code="timeout")
