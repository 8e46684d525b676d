"""One part of a backup: a directory as a ``.tar.gz`` whose SQLite files are snapshots.

Every SQLite database found (by header) is copied with the online backup API into a staging
folder and archived from there; their ``-wal``/``-shm``/``-journal`` files are left out. Other
files are archived as they are (regular files, directories, symlinks; sockets and FIFOs are
skipped). Extraction refuses anything that could land outside its target.
"""

from __future__ import annotations

import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from bindrop.care.sqlite_copy import SIDE_SUFFIXES, copy_database, find_sqlite_files
from bindrop.errors import CopyFailed, InvalidInput

COMPRESS_LEVEL = 6


@dataclass(frozen=True)
class Archived:
    databases: tuple[str, ...]
    files: int


def write_archive(source: Path, target: Path, staging: Path) -> Archived:
    """Archive the directory ``source`` into ``target`` (.tar.gz), SQLite files as snapshots
    made in ``staging`` (a folder on the backup's disk, removed by the caller).

    A missing ``source`` gives an empty archive. Raises ``CopyFailed`` or ``OSError`` (disk
    full); the caller removes the half-written ``target``.
    """
    databases = {p.relative_to(source).as_posix(): p for p in find_sqlite_files(source)}
    sides = {f"{name}{suffix}" for name in databases for suffix in SIDE_SUFFIXES}
    count = 0
    copied: list[str] = []
    with tarfile.open(target, "w:gz", compresslevel=COMPRESS_LEVEL) as tar:
        if not source.is_dir():
            return Archived((), 0)
        for parent, dirs, files in os.walk(source, followlinks=False):
            dirs.sort()
            rel_parent = Path(parent).relative_to(source)
            for name in dirs:
                path = Path(parent) / name
                rel = (rel_parent / name).as_posix()
                # A symlink to a directory is listed in dirs; os.walk does not follow it.
                tar.add(path, arcname=rel, recursive=False)
            for name in sorted(files):
                path = Path(parent) / name
                rel = (rel_parent / name).as_posix()
                if rel in sides:
                    continue
                if rel in databases:
                    snapshot = staging / f"db{len(os.listdir(staging))}"
                    if not _snapshot(path, snapshot):
                        continue  # deleted or replaced by its app meanwhile
                    info = tar.gettarinfo(snapshot, arcname=rel)
                    _copy_owner(info, path)
                    with snapshot.open("rb") as f:
                        tar.addfile(info, f)
                    snapshot.unlink()
                    copied.append(rel)
                    count += 1
                    continue
                try:
                    mode = path.lstat().st_mode
                    if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                        tar.add(path, arcname=rel, recursive=False)
                        count += 1
                except FileNotFoundError:
                    continue  # deleted by its app between the listing and now
    return Archived(tuple(sorted(copied)), count)


def _snapshot(path: Path, snapshot: Path) -> bool:
    """Copy the database at ``path`` (in a folder its app controls) into ``snapshot``; False
    if it is gone, or no longer the regular file it was each time it is tried (the app
    replaced it, or swapped a symlink in: never copied through one). ``CopyFailed`` else."""
    for _ in range(3):
        try:
            found = path.lstat()
        except FileNotFoundError:
            return False
        if not stat.S_ISREG(found.st_mode):
            return False
        try:
            copy_database(path, snapshot, expect=found)
            return True
        except CopyFailed:
            try:
                now = path.lstat()
            except FileNotFoundError:
                return False
            if (now.st_dev, now.st_ino, now.st_mode) == (found.st_dev, found.st_ino,
                                                         found.st_mode):
                raise  # the same file, and still no copy: a real failure
    return False


def _copy_owner(info: tarfile.TarInfo, original: Path) -> None:
    st = original.lstat()  # never through a symlink swapped in meanwhile
    info.uid, info.gid, info.mode = st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def extract_archive(archive: Path, target: Path) -> None:
    """Extract ``archive`` into the new directory ``target``; ``InvalidInput`` (after which
    the caller removes ``target``) for a member that is absolute, climbs out with ``..``, is
    a device or a hard link. Owners are not restored (the caller sets them)."""
    target.mkdir(parents=True)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            name = member.name
            if name.startswith("/") or ".." in Path(name).parts or not (
                    member.isreg() or member.isdir() or member.issym()):
                raise InvalidInput(f"the archive {archive.name} holds {name!r}, which a backup "
                                   "never does: not restoring it")
            if member.issym() and (member.linkname.startswith("/")
                                   or ".." in Path(member.linkname).parts):
                # Symlinks are restored as they were, but only within the data directory.
                raise InvalidInput(f"the archive {archive.name} holds a symlink {name!r} "
                                   "leaving its directory: not restoring it")
        tar.extractall(target, filter="data")
