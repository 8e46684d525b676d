"""The body of one care unit (``bindrop care-run KIND …``): the file work, on the server.

The hub starts a unit per run (``bindrop.units.care``); the unit's process calls one of these,
reports progress and its result to the hub, and exits 0 (done) or 1 (failed). Each returns
the plain dict the hub shows as the run's result, or raises a ``BindropError`` saying why not.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bindrop.care.backup import app_names_on_disk, run_backup
from bindrop.care.config import CareSettings, parse_threshold
from bindrop.care.disk import measure, over_threshold, record_sample
from bindrop.care.gc import collect
from bindrop.care.local import LocalBackups
from bindrop.care.restore import (
    Prepared,
    choose_backup,
    discard,
    prepare_restore,
    swap_in,
    verify_backup,
)
from bindrop.domain.names import validate_app_name
from bindrop.errors import BackupFailed, DamagedBackup
from bindrop.settings import Settings

Progress = Callable[[str], None]


def backup(settings: Settings, care: CareSettings, app: str | None,
           progress: Progress) -> dict[str, Any]:
    what = app if app is not None else (
        f"bindrop's database and {len(app_names_on_disk(care))} apps' data")
    progress(f"backing up {what}")
    result = run_backup(settings, care, app)
    progress(f"backup {result.manifest.id} made")
    return result.to_dict()


def verify(care: CareSettings, backup_id: str, progress: Progress) -> dict[str, Any]:
    progress(f"checking {backup_id}: sizes, sha256, integrity_check")
    problems = verify_backup(care, backup_id)
    if problems:
        raise DamagedBackup(f"backup {backup_id} is damaged: " + "; ".join(problems))
    return {"id": backup_id, "ok": True, "problems": []}


def staging_of(care: CareSettings, app: str) -> Path:
    return care.app_data_dir(validate_app_name(app)).parent / f".restore-{app}"


def restore_prepare(care: CareSettings, app: str, backup_id: str | None,
                    progress: Progress) -> dict[str, Any]:
    """Check the backup and extract it beside the app's data; the app is not touched."""
    with LocalBackups(care.backup_dir).locked():
        chosen = choose_backup(care, app, backup_id)
        progress(f"checking {chosen} and extracting {app}'s data beside its own")
        prepared = prepare_restore(care, app, chosen)
    return {"app": app, "backup": chosen, "databases": list(prepared.databases)}


def restore_swap(care: CareSettings, app: str, backup_id: str, databases: Sequence[str],
                 progress: Progress) -> dict[str, Any]:
    """Put the prepared data in place of the app's (the hub stopped the app), check it."""
    target = care.app_data_dir(validate_app_name(app))
    prepared = Prepared(app, backup_id, staging_of(care, app), target, tuple(databases))
    if not prepared.staging.is_dir():
        raise BackupFailed(f"nothing prepared to restore for {app}; run the restore again")
    progress(f"swapping {backup_id}'s data in for {app}")
    try:
        problems = swap_in(prepared)
    except BaseException:
        discard(prepared)
        raise
    if problems:
        raise BackupFailed(f"restored {app} from {backup_id}, but: {'; '.join(problems)}; "
                           f"{app} was left stopped")
    return {"app": app, "backup": backup_id}


def restore_discard(care: CareSettings, app: str) -> None:
    shutil.rmtree(staging_of(care, app), ignore_errors=True)


def gc(settings: Settings, care: CareSettings, dry_run: bool,
       progress: Progress) -> dict[str, Any]:
    progress("looking for unused blobs and backups beyond retention"
             + (" (dry run: nothing is deleted)" if dry_run else ""))
    return collect(settings, care, dry_run=dry_run).to_dict()


def disk(settings: Settings, care: CareSettings) -> dict[str, Any]:
    return measure(settings, care).to_dict()


def disk_check(settings: Settings, care: CareSettings, threshold: str | None) -> dict[str, Any]:
    """A usage sample, recorded; which filesystems are over the threshold. The hub turns a
    change of that into an event and an alert."""
    limit = parse_threshold(threshold) if threshold else care.disk_threshold
    report = measure(settings, care, parts=False)
    record_sample(settings, report, limit)
    over = over_threshold(report, limit)
    return {"at": report.at, "threshold": limit, "over": [f.mount for f in over],
            "filesystems": [f.to_dict() for f in report.filesystems]}
