"""``bindrop backup run|list|restore|verify``: consistent backups of every SQLite database.

Run on the server (``bindrop-backup.timer`` runs ``backup run`` daily). Each outcome is an
event in the hub, so ``bindrop status`` and the dashboard show the last backup and failure.
"""

from __future__ import annotations

import click

from bindrop.care.backup import run_backup
from bindrop.care.local import LocalBackups
from bindrop.care.restore import (
    choose_backup,
    discard,
    list_backups,
    prepare_restore,
    swap_in,
    verify_backup,
)
from bindrop.cli.care_common import CareContext, care_context, care_options
from bindrop.cli.remote import emit_json, json_option, size_text, table
from bindrop.errors import BackupFailed, BindropError, DamagedBackup
from bindrop.units import validate_app_name


@click.group()
def backup() -> None:
    """Back up and restore bindrop's database and every app's data.

    Example: bindrop backup run
    """


@backup.command("run")
@click.argument("app", required=False)
@json_option
@care_options
def run_cmd(app: str | None, as_json: bool, server: str | None, token: str | None) -> None:
    """Back up bindrop's database and every app's data (or only APP's), then apply retention.

    SQLite databases are copied with the online backup API while apps keep writing; the rest
    of each data directory is archived; parts are compressed and listed in a manifest with
    sizes and sha256. Local folder: BINDROP_BACKUP_DIR (/var/backups/bindrop); a bucket when
    BINDROP_S3_BUCKET is set (in /etc/bindrop/care.env).

    Example: bindrop backup run blog --json
    """
    if app is not None:
        validate_app_name(app)
    ctx = care_context(server, token)
    try:
        result = run_backup(ctx.settings, ctx.care, app)
    except BindropError as exc:
        ctx.record("backup_failed", exc.message, app=app, data={"code": exc.code})
        raise
    summary = result.to_dict()
    ctx.record("backup_succeeded",
               f"backup {result.manifest.id} made ({size_text(result.manifest.size)}"
               f"{', uploaded' if result.uploaded else ''})", app=app, data=summary)
    if as_json:
        emit_json(summary)
        return
    click.echo(f"backup {result.manifest.id}: {len(result.manifest.parts)} parts, "
               f"{size_text(result.manifest.size)}"
               + (f", uploaded to {ctx.care.s3.bucket}" if ctx.care.s3 else ""))
    for backup_id in result.deleted:
        click.echo(f"deleted {backup_id} (retention)")


@backup.command("list")
@click.argument("app", required=False)
@json_option
@care_options
def list_cmd(app: str | None, as_json: bool, server: str | None, token: str | None) -> None:
    """List complete backups (local and in the bucket), oldest first; with APP, its own.

    Example: bindrop backup list blog
    """
    if app is not None:
        validate_app_name(app)
    ctx = care_context(server, token)
    listed = list_backups(ctx.care, app)
    if as_json:
        emit_json([item.to_dict() for item in listed])
        return
    if not listed:
        click.echo("no backups yet; make one with `bindrop backup run`")
        return
    table(["ID", "SIZE", "APPS", "WHERE"],
          [[b.manifest.id, size_text(b.manifest.size),
            ", ".join(b.manifest.summary()["apps"]) or "-", ", ".join(b.where)]
           for b in listed])


@backup.command("verify")
@click.argument("backup_id", metavar="ID")
@json_option
@care_options
def verify_cmd(backup_id: str, as_json: bool, server: str | None, token: str | None) -> None:
    """Check backup ID: every part's size and sha256, and integrity_check of every database.

    Exits 1 when anything is wrong.

    Example: bindrop backup verify 20261128T031500.000Z-server
    """
    ctx = care_context(server, token)
    problems = verify_backup(ctx.care, backup_id)
    if as_json:
        emit_json({"id": backup_id, "ok": not problems, "problems": problems})
    elif not problems:
        click.echo(f"backup {backup_id} is intact")
    if problems:
        if not as_json:
            for problem in problems:
                click.echo(f"problem: {problem}", err=True)
        raise DamagedBackup(f"backup {backup_id} is damaged ({len(problems)} problems)")


@backup.command("restore")
@click.argument("app")
@click.option("--from", "backup_id", metavar="ID",
              help="The backup to restore (default: the newest holding APP's data).")
@json_option
@care_options
def restore_cmd(app: str, backup_id: str | None, as_json: bool, server: str | None,
                token: str | None) -> None:
    """Restore APP's data from a backup: check it, stop APP, swap the data in, check every
    database with integrity_check, start APP again.

    A damaged backup, or one of another app, is refused before APP is touched.

    Example: bindrop backup restore blog --from 20261128T031500.000Z-server
    """
    validate_app_name(app)
    ctx = care_context(server, token)
    # No backup run or gc may delete the backup while it is being restored.
    with LocalBackups(ctx.care.backup_dir).locked():
        _restore(ctx, app, backup_id, as_json)


def _restore(ctx: CareContext, app: str, backup_id: str | None, as_json: bool) -> None:
    chosen = choose_backup(ctx.care, app, backup_id)
    try:
        prepared = prepare_restore(ctx.care, app, chosen)
    except BindropError as exc:
        ctx.record("restore_failed", exc.message, app=app, data={"backup": chosen})
        raise
    try:
        config = ctx.call(lambda c: c.app(app))
        was_running = config.get("desired_state") == "running"
        ctx.call(lambda c: c.action(app, "stop"))
        problems = swap_in(prepared)
    except BaseException:
        discard(prepared)
        raise
    if problems:
        message = f"restored {app} from {chosen}, but: {'; '.join(problems)}"
        ctx.record("restore_failed", message, app=app, data={"backup": chosen})
        raise BackupFailed(message + f"; {app} was left stopped")
    if was_running:
        ctx.call(lambda c: c.action(app, "start"))
    message = f"{app} restored from backup {chosen}" + ("" if was_running else " (left stopped)")
    ctx.record("backup_restored", message, app=app, data={"backup": chosen})
    if as_json:
        emit_json({"app": app, "backup": chosen, "started": was_running})
    else:
        click.echo(message)
