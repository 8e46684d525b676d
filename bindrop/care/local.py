"""Backups in a local folder: ``<dir>/<id>/`` with its parts and ``manifest.json``.

A backup is built in ``<dir>/.<id>.partial/`` and renamed to ``<dir>/<id>/`` only once its
manifest is written and synced, so a run that fails half-way leaves nothing that looks
complete; ``.partial`` folders are swept by the next run. One run at a time (``flock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from bindrop.care.manifest import MANIFEST, Manifest, parse_backup_id, parse_manifest
from bindrop.errors import Conflict, InvalidInput, NotFound

PARTIAL = ".partial"
LOCK = ".lock"


class LocalBackups:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, backup_id: str) -> Path:
        parse_backup_id(backup_id)
        return self.folder / backup_id

    def partial_path(self, backup_id: str) -> Path:
        parse_backup_id(backup_id)
        return self.folder / f".{backup_id}{PARTIAL}"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock: one backup, restore or gc at a time. ``Conflict`` if
        another holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Conflict(f"another backup, restore or gc is running on {self.folder}; "
                               "try again when it ends") from None
            yield
        finally:
            os.close(fd)

    def sweep_partials(self) -> int:
        """Remove what failed runs left; return the bytes freed. Call with the lock held."""
        freed = 0
        for entry in self.folder.glob(f".*{PARTIAL}"):
            freed += tree_size(entry)
            shutil.rmtree(entry, ignore_errors=True)
        return freed

    def manifest(self, backup_id: str) -> Manifest:
        path = self.path(backup_id) / MANIFEST
        try:
            return parse_manifest(path.read_text(), backup_id)
        except FileNotFoundError:
            raise NotFound(f"no local backup {backup_id}; `bindrop backup list` shows "
                           "them") from None

    def list(self) -> list[Manifest]:
        """Complete backups (a manifest that parses), oldest first."""
        found = []
        for entry in sorted(self.folder.iterdir()) if self.folder.is_dir() else []:
            if entry.name.startswith(".") or not (entry / MANIFEST).is_file():
                continue
            with contextlib.suppress(InvalidInput, OSError):
                found.append(parse_manifest((entry / MANIFEST).read_text(), entry.name))
        return found

    def delete(self, backup_id: str) -> int:
        path = self.path(backup_id)
        size = tree_size(path)
        # Drop the manifest first: an interrupted delete then leaves no complete-looking entry.
        with contextlib.suppress(FileNotFoundError):
            (path / MANIFEST).unlink()
        shutil.rmtree(path, ignore_errors=True)
        return size


def tree_size(path: Path) -> int:
    """Bytes in the regular files under ``path`` (symlinks not followed); 0 if missing."""
    total = 0
    if path.is_file() and not path.is_symlink():
        return path.stat().st_size
    for parent, _dirs, files in os.walk(path, followlinks=False):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(parent, name))
                if not os.path.islink(os.path.join(parent, name)):
                    total += st.st_size
    return total
