"""``bindrop gc``: free what bindrop can: blobs no release uses, backups beyond retention, and
what failed backup runs left. (Unpacked bundles are the hub's to collect: it alone unpacks.)

Blobs are judged by bindrop's database, read-only (the hub stays its only writer); a blob
younger than ``BLOB_GRACE_S`` is kept even when unreferenced, since an upload writes its blob
before the hub records the release. With a bucket, the blob store is a cache of it: a blob
of a release that is no app's current one is evicted when the bucket holds it whole (a
deploy or rollback fetches it back); the current releases' blobs always stay, and so does a
blob fetched or written within ``BLOB_GRACE_S`` (a deploy may be about to start it).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bindrop.care.backup import apply_retention, s3_of
from bindrop.care.config import CareSettings
from bindrop.care.local import LocalBackups
from bindrop.care.manifest import SERVER_SCOPE, parse_backup_id
from bindrop.care.retention import Dated, plan_retention
from bindrop.errors import BindropError
from bindrop.settings import Settings

BLOB_GRACE_S = 3600.0


@dataclass(frozen=True)
class Freed:
    blobs: int
    blob_bytes: int
    backups: tuple[str, ...]
    backup_bytes: int
    dry_run: bool = False

    @property
    def total(self) -> int:
        return self.blob_bytes + self.backup_bytes

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "blobs": self.blobs, "blob_bytes": self.blob_bytes,
                "backups": list(self.backups),
                "backup_bytes": self.backup_bytes, "total_bytes": self.total}


def referenced_blobs(settings: Settings) -> set[str]:
    """Every blob some release uses, read from the database without writing it."""
    if not settings.db_path.exists():
        return set()
    conn = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True, timeout=10)
    try:
        return {row[0] for row in conn.execute("SELECT DISTINCT sha256 FROM releases")}
    except sqlite3.Error as exc:
        raise BindropError(f"cannot read the releases from {settings.db_path}: {exc}") from None
    finally:
        conn.close()


def current_blobs(settings: Settings) -> set[str]:
    """The blobs of every app's current release (what runs, or runs after a reboot)."""
    if not settings.db_path.exists():
        return set()
    conn = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True, timeout=10)
    try:
        return {row[0] for row in conn.execute(
            "SELECT releases.sha256 FROM apps JOIN releases ON releases.app = apps.name "
            "AND releases.number = apps.current_release")}
    except sqlite3.Error as exc:
        raise BindropError(f"cannot read the releases from {settings.db_path}: {exc}") from None
    finally:
        conn.close()


def evict_cached_blobs(settings: Settings, bucket_size: Callable[[str], int | None],
                       keep: set[str], *, now: float, dry_run: bool = False
                       ) -> tuple[int, int]:
    """Remove the local blobs not in ``keep``, older than ``BLOB_GRACE_S``, that the bucket
    holds whole (same size); with ``dry_run`` only count them. Returns ``(removed_count,
    freed_bytes)``."""
    removed = freed = 0
    root = settings.blobs_dir
    for entry in os.scandir(root) if root.is_dir() else []:
        if (not entry.is_file(follow_symlinks=False) or entry.name in keep
                or len(entry.name) != 64):
            continue
        st = entry.stat(follow_symlinks=False)
        size = st.st_size
        if now - st.st_mtime < BLOB_GRACE_S or bucket_size(entry.name) != size:
            continue
        with contextlib.suppress(FileNotFoundError):
            if not dry_run:
                os.unlink(entry.path)
            removed += 1
            freed += size
    return removed, freed


def collect(settings: Settings, care: CareSettings, *, now: float | None = None,
            dry_run: bool = False) -> Freed:
    """Free what can be freed; with ``dry_run``, only say what would be (deletes nothing)."""
    keep = referenced_blobs(settings)
    now = time.time() if now is None else now
    removed = blob_bytes = 0
    root = settings.blobs_dir
    for entry in os.scandir(root) if root.is_dir() else []:
        if (not entry.is_file(follow_symlinks=False) or entry.name in keep
                or len(entry.name) != 64):
            continue
        st = entry.stat(follow_symlinks=False)
        if now - st.st_mtime < BLOB_GRACE_S:
            continue
        with contextlib.suppress(FileNotFoundError):
            if not dry_run:
                os.unlink(entry.path)
            removed += 1
            blob_bytes += st.st_size
    bucket = s3_of(care)
    if bucket is not None:
        evicted, evicted_bytes = evict_cached_blobs(settings, bucket.blob_size,
                                                    current_blobs(settings), now=now,
                                                    dry_run=dry_run)
        removed += evicted
        blob_bytes += evicted_bytes
    local = LocalBackups(care.backup_dir)
    deleted: list[str] = []
    backup_bytes = 0
    if care.backup_dir.is_dir():
        with local.locked():
            if not dry_run:
                backup_bytes += local.sweep_partials()
            sizes = {m.id: m.size for m in local.list()}
            s3 = s3_of(care)
            scopes = {parse_backup_id(i)[1] for i in sizes} | {None}
            for scope in sorted(scopes, key=lambda s: s or SERVER_SCOPE):
                if dry_run:
                    dated = [Dated(i, parse_backup_id(i)[0]) for i in sizes
                             if parse_backup_id(i)[1] == scope]
                    doomed = plan_retention(dated, care.keep_daily, care.keep_weekly)
                else:
                    doomed = apply_retention(care, local, s3, scope_app=scope)
                for backup_id in doomed:
                    deleted.append(backup_id)
                    backup_bytes += sizes.get(backup_id, 0)
    return Freed(removed, blob_bytes, tuple(deleted), backup_bytes, dry_run)
