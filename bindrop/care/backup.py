"""``bindrop backup run``: snapshot bindrop's database and every app's data, then keep what
retention says. Synchronous and local; the CLI records the outcome as an event.

A run builds the backup in a ``.partial`` folder, writes the manifest last, syncs, renames,
uploads to S3 when configured, and only after all of that succeeded applies retention.
Any failure (a full disk included) removes the partial folder and raises ``BackupFailed``.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bindrop.care.archive import write_archive
from bindrop.care.config import CareSettings
from bindrop.care.local import LocalBackups
from bindrop.care.manifest import (
    BINDROP_PART,
    MANIFEST,
    Manifest,
    Part,
    file_digest,
    new_backup_id,
    parse_backup_id,
)
from bindrop.care.retention import Dated, plan_retention
from bindrop.care.s3 import S3Backups
from bindrop.care.server_part import SERVER_PART, write_server_part
from bindrop.care.sqlite_copy import copy_database, fsync
from bindrop.domain.names import validate_app_name
from bindrop.errors import BackupFailed, BindropError, CopyFailed, NotFound
from bindrop.settings import Settings

BINDROP_DB = "bindrop.db"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackupResult:
    manifest: Manifest
    uploaded: bool
    deleted: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {**self.manifest.summary(), "uploaded": self.uploaded,
                "deleted": list(self.deleted), "problems": list(self.problems)}


def s3_of(care: CareSettings) -> S3Backups | None:
    return S3Backups(care.s3) if care.s3 is not None else None


def app_names_on_disk(care: CareSettings) -> list[str]:
    """Apps with a data directory (valid names only), sorted."""
    names = []
    for entry in sorted(care.apps_data_dir.iterdir()) if care.apps_data_dir.is_dir() else []:
        try:
            validate_app_name(entry.name)
        except BindropError:
            continue
        if entry.is_dir():
            names.append(entry.name)
    return names


def run_backup(settings: Settings, care: CareSettings, app: str | None = None, *,
               now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> BackupResult:
    """Back up the whole server (``app`` None: bindrop's database and every app's data) or
    one app, then apply retention to backups of the same scope. ``BackupFailed`` on failure,
    with nothing complete-looking left behind."""
    if app is not None and not care.app_data_dir(validate_app_name(app)).is_dir():
        raise NotFound(f"{app} has no data directory ({care.app_data_dir(app)}): nothing to "
                       "back up; `bindrop apps` lists the apps")
    local = LocalBackups(care.backup_dir)
    with local.locked():
        local.sweep_partials()
        backup_id = new_backup_id(now(), app)
        partial = local.partial_path(backup_id)
        try:
            manifest = _build(settings, care, backup_id, app, partial)
            os.replace(partial, local.path(backup_id))
            _fsync_dir(care.backup_dir)
        except OSError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            if exc.errno == errno.ENOSPC:
                raise BackupFailed(f"the disk holding {care.backup_dir} is full: backup "
                                   f"{backup_id} was not made; free space (`bindrop gc`, "
                                   "`bindrop disk`) and run it again") from None
            raise BackupFailed(f"backup {backup_id} failed: {exc}") from None
        except CopyFailed as exc:
            shutil.rmtree(partial, ignore_errors=True)
            raise BackupFailed(f"backup {backup_id} failed: {exc.message}") from None
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        s3 = s3_of(care)
        if s3 is not None:
            s3.upload(local.path(backup_id), manifest)
        deleted = apply_retention(care, local, s3, scope_app=app)
        return BackupResult(manifest, s3 is not None, tuple(deleted))


def _build(settings: Settings, care: CareSettings, backup_id: str, app: str | None,
           partial: Path) -> Manifest:
    partial.mkdir(mode=0o700)
    staging = partial / ".staging"
    staging.mkdir()
    parts: list[Part] = []
    if app is None:
        snapshot = staging / BINDROP_DB
        copy_database(settings.db_path, snapshot)
        with tarfile.open(partial / BINDROP_PART, "w:gz") as tar:
            tar.add(snapshot, arcname=BINDROP_DB)
        parts.append(_part(partial / BINDROP_PART, None, (BINDROP_DB,), 1))
        parts.append(_server_part(settings, care, snapshot, partial))
        snapshot.unlink()
    for name in [app] if app is not None else app_names_on_disk(care):
        archive = partial / f"app-{name}.tar.gz"
        archived = write_archive(care.app_data_dir(name), archive, staging)
        parts.append(_part(archive, name, archived.databases, archived.files))
    shutil.rmtree(staging)
    manifest = Manifest(backup_id, parse_backup_id(backup_id)[0].isoformat(), app, tuple(parts))
    path = partial / MANIFEST
    path.write_text(manifest.to_json())
    for entry in partial.iterdir():
        fsync(entry)
    return manifest


def _server_part(settings: Settings, care: CareSettings, snapshot: Path, partial: Path) -> Part:
    """``server.tar.gz``: /etc/bindrop and the blobs the releases need (``server_part``)."""
    s3 = s3_of(care)
    files, problems = write_server_part(
        partial / SERVER_PART, etc_dir=settings.etc_dir, blobs_dir=settings.blobs_dir,
        db_snapshot=snapshot, mirror=s3,
        bucket=care.s3.describe() if care.s3 is not None else None)
    for problem in problems:
        log.warning("backup: %s", problem)
    return _part(partial / SERVER_PART, None, (), files)


def _part(path: Path, app: str | None, databases: tuple[str, ...], files: int) -> Part:
    size, digest = file_digest(path)
    return Part(path.name, size, digest, app, databases, files)


def apply_retention(care: CareSettings, local: LocalBackups, s3: S3Backups | None, *,
                    scope_app: str | None) -> list[str]:
    """Delete backups of one scope (the server's, or one app's) beyond retention, locally and
    in the bucket. Returns the ids deleted."""
    deleted: list[str] = []
    stores: list[LocalBackups | S3Backups] = [local, *([s3] if s3 is not None else [])]
    for store in stores:
        dated = [Dated(m.id, parse_backup_id(m.id)[0]) for m in store.list()
                 if m.app == scope_app]
        for backup_id in plan_retention(dated, care.keep_daily, care.keep_weekly):
            store.delete(backup_id)
            if backup_id not in deleted:
                deleted.append(backup_id)
    return deleted


def _fsync_dir(path: Path) -> None:
    # A rename is durable once the folder holding it is synced.
    fsync(path)
