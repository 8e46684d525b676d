"""Finding, verifying and restoring backups.

Restore is two steps so that nothing is touched before the backup has proven itself:
``prepare_restore`` finds the backup (local, else downloaded from the bucket), checks that it
is of this app, checks the part's size and sha256, extracts it beside the data directory and
runs ``PRAGMA integrity_check`` on every database in it; only then does the caller stop the
app and call ``swap_in``, which renames the restored tree into place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bindrop.care.archive import extract_archive
from bindrop.care.backup import s3_of
from bindrop.care.config import CareSettings
from bindrop.care.local import LocalBackups
from bindrop.care.manifest import Manifest, Part, check_parts, parse_backup_id
from bindrop.care.sqlite_copy import integrity_check
from bindrop.domain.names import validate_app_name
from bindrop.errors import DamagedBackup, InvalidInput, NotFound


@dataclass(frozen=True)
class Listed:
    manifest: Manifest
    where: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self.manifest.summary(), "where": list(self.where)}


def list_backups(care: CareSettings, app: str | None = None) -> list[Listed]:
    """Complete backups, local and in the bucket, oldest first; with ``app``: those that
    hold that app's data."""
    found: dict[str, tuple[Manifest, list[str]]] = {}
    sources: list[tuple[str, Any]] = [("local", LocalBackups(care.backup_dir))]
    s3 = s3_of(care)
    if s3 is not None:
        sources.append(("s3", s3))
    for where, store in sources:
        for manifest in store.list():
            found.setdefault(manifest.id, (manifest, []))[1].append(where)
    listed = [Listed(m, tuple(w)) for m, w in found.values()
              if app is None or m.part_for(app) is not None]
    return sorted(listed, key=lambda item: parse_backup_id(item.manifest.id)[0])


@contextlib.contextmanager
def fetched(care: CareSettings, backup_id: str) -> Iterator[tuple[Manifest, Path]]:
    """The backup's manifest and the folder holding its parts: the local folder, or a
    temporary download from the bucket (removed afterwards)."""
    parse_backup_id(backup_id)
    local = LocalBackups(care.backup_dir)
    s3 = s3_of(care)
    if s3 is None or local.path(backup_id).is_dir():
        yield local.manifest(backup_id), local.path(backup_id)
        return
    care.backup_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".fetch-{backup_id}-",
                                     dir=care.backup_dir) as tmp:
        manifest = s3.download(backup_id, Path(tmp))
        yield manifest, Path(tmp)


def check_part(manifest: Manifest, folder: Path, part: Part, target: Path) -> list[str]:
    """Check ``part`` of a backup: size and sha256, then extract it into ``target`` (which
    must not exist) and check every database. Returns the problems (empty: good)."""
    problems = check_parts(manifest, folder, [part.name])
    if problems:
        return problems
    try:
        extract_archive(folder / part.name, target)
    except (InvalidInput, OSError, EOFError, tarfile.TarError) as exc:
        return [f"{part.name} cannot be extracted: {exc}"]

    for database in part.databases:
        path = target / database
        if not path.is_file():
            problems.append(f"{part.name}: the database {database} is missing")
            continue
        problem = integrity_check(path)
        if problem is not None:
            problems.append(f"{part.name}: {database}: {problem}")
    return problems


def verify_backup(care: CareSettings, backup_id: str) -> list[str]:
    """Every problem of backup ``backup_id`` (every part, every database); empty: good."""
    problems: list[str] = []
    with fetched(care, backup_id) as (manifest, folder):
        for part in manifest.parts:
            with tempfile.TemporaryDirectory(prefix=".verify-", dir=folder.parent) as tmp:
                problems += check_part(manifest, folder, part, Path(tmp) / "data")
    return problems


@dataclass(frozen=True)
class Prepared:
    app: str
    backup_id: str
    staging: Path
    target: Path
    databases: tuple[str, ...]


def choose_backup(care: CareSettings, app: str, backup_id: str | None) -> str:
    if backup_id is not None:
        parse_backup_id(backup_id)
        return backup_id
    candidates = list_backups(care, app)
    if not candidates:
        raise NotFound(f"there is no backup of {app}; make one with `bindrop backup run {app}`")
    return candidates[-1].manifest.id


def prepare_restore(care: CareSettings, app: str, backup_id: str) -> Prepared:
    """Check backup ``backup_id`` for ``app`` and extract it beside the app's data directory.

    Refuses (``InvalidInput``: a backup of another app; ``DamagedBackup``: wrong sha256,
    bad archive, failed ``integrity_check``) before anything of the app is touched."""
    validate_app_name(app)
    target = care.app_data_dir(app)
    staging = target.parent / f".restore-{app}"
    with fetched(care, backup_id) as (manifest, folder):
        _, scope = parse_backup_id(backup_id)
        if scope is not None and scope != app:
            raise InvalidInput(f"backup {backup_id} is of app {scope}, not {app}: not "
                               f"restoring it; `bindrop backup list {app}` shows {app}'s")
        part = manifest.part_for(app)
        if part is None:
            raise InvalidInput(f"backup {backup_id} holds no data of {app}: not restoring it; "
                               f"`bindrop backup list {app}` shows {app}'s")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        problems = check_part(manifest, folder, part, staging)
        if problems:
            shutil.rmtree(staging, ignore_errors=True)
            raise DamagedBackup(f"backup {backup_id} is damaged, nothing was restored: "
                                + "; ".join(problems))
    return Prepared(app, backup_id, staging, target, part.databases)


def discard(prepared: Prepared) -> None:
    shutil.rmtree(prepared.staging, ignore_errors=True)


def swap_in(prepared: Prepared) -> list[str]:
    """Put the prepared tree in place of the app's data directory (the app must be stopped),
    owned like the directory it replaces, then check every database again. Returns the
    problems found after the swap (empty: good)."""
    target, staging = prepared.target, prepared.staging
    owner = (0, 0, 0o755)
    if target.exists():
        st = target.stat()
        owner = (st.st_uid, st.st_gid, st.st_mode & 0o7777)
    for parent, dirs, files in os.walk(staging):
        for name in [*dirs, *files]:
            with contextlib.suppress(OSError):
                os.chown(os.path.join(parent, name), owner[0], owner[1], follow_symlinks=False)
    os.chown(staging, owner[0], owner[1])
    staging.chmod(owner[2])
    old = target.parent / f".before-restore-{prepared.app}"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except OSError:
        if old.exists():
            os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
    problems = []
    for database in prepared.databases:
        problem = integrity_check(target / database)
        if problem is not None:
            problems.append(f"{database}: {problem}")
    return problems
