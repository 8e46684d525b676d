"""Disk usage: the filesystems holding bindrop's data, and bindrop's own parts on them.

A disk check (what ``bindrop-disk.timer`` asks of the hub every 15 minutes, run in a care
unit) appends a sample to a small JSON-lines file (bounded) and says which filesystems are
over the threshold; the hub turns a change of that into an event and an alert.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bindrop.care.backup import app_names_on_disk
from bindrop.care.config import CareSettings
from bindrop.care.local import tree_size
from bindrop.settings import Settings

SAMPLES_FILE = "disk-samples.jsonl"
SAMPLES_KEPT = 2000  # 15-minute samples: about three weeks


@dataclass(frozen=True)
class Filesystem:
    mount: str
    total: int
    used: int
    free: int
    holds: tuple[str, ...]

    @property
    def percent(self) -> float:
        return round(100.0 * self.used / self.total, 1) if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "holds": list(self.holds), "percent": self.percent}


@dataclass(frozen=True)
class DiskReport:
    at: str
    filesystems: tuple[Filesystem, ...]
    parts: dict[str, int]
    apps: dict[str, int]

    @property
    def fullest(self) -> Filesystem | None:
        return max(self.filesystems, key=lambda f: f.percent, default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "filesystems": [f.to_dict() for f in self.filesystems],
                "parts": self.parts, "apps": self.apps}


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem holding ``path`` (its nearest existing parent)."""
    path = path.absolute()
    while not path.exists():
        path = path.parent
    dev = path.stat().st_dev
    while path != path.parent and path.parent.stat().st_dev == dev:
        path = path.parent
    return path


def measure(settings: Settings, care: CareSettings, *, parts: bool = True) -> DiskReport:
    """Usage of each filesystem holding bindrop's data and, with ``parts``, the size of each
    part (blobs, database, backups, journal, each app's data). Reads only."""
    places = {"data": settings.state_dir, "apps": care.apps_data_dir,
              "backups": care.backup_dir, "journal": care.journal_dir}
    by_mount: dict[Path, list[str]] = {}
    for name, path in places.items():
        by_mount.setdefault(mount_point(path), []).append(name)
    filesystems = []
    for mount, holds in by_mount.items():
        st = os.statvfs(mount)
        total = st.f_blocks * st.f_frsize
        free = st.f_bavail * st.f_frsize
        used = total - st.f_bfree * st.f_frsize
        filesystems.append(Filesystem(str(mount), total, used, free, tuple(holds)))
    sizes: dict[str, int] = {}
    apps: dict[str, int] = {}
    if parts:
        db = settings.db_path
        sizes = {
            "database": sum(tree_size(db.with_name(db.name + s)) for s in ("", "-wal", "-shm")),
            "blobs": tree_size(settings.blobs_dir),
            "backups": tree_size(care.backup_dir),
            "journal": tree_size(care.journal_dir),
        }
        apps = {name: tree_size(care.app_data_dir(name)) for name in app_names_on_disk(care)}
        sizes["apps"] = sum(apps.values())
    return DiskReport(datetime.now(UTC).isoformat(timespec="seconds"), tuple(filesystems),
                      sizes, apps)


def samples_path(settings: Settings) -> Path:
    return settings.state_dir / "care" / SAMPLES_FILE


def record_sample(settings: Settings, report: DiskReport, threshold: float) -> None:
    """Append ``report``'s filesystems to the samples file, keeping the newest ones."""
    path = samples_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"at": report.at, "threshold": threshold,
                       "over": [f.mount for f in over_threshold(report, threshold)],
                       "filesystems": [f.to_dict() for f in report.filesystems]})
    lines = path.read_text().splitlines() if path.exists() else []
    lines = [*lines[-(SAMPLES_KEPT - 1):], line]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def last_sample(settings: Settings) -> dict[str, Any] | None:
    path = samples_path(settings)
    try:
        lines = path.read_text().splitlines()
        return dict(json.loads(lines[-1])) if lines else None
    except (OSError, ValueError):
        return None


def over_threshold(report: DiskReport, threshold: float) -> list[Filesystem]:
    """The filesystems whose usage is at or above ``threshold`` percent. Pure."""
    return [f for f in report.filesystems if f.percent >= threshold]
