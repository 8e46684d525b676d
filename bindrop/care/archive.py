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

    ``source`` may belong to someone else (an app's data, archived as root): it is walked by
    folder descriptors (``os.fwalk``) and every file opened relative to its folder without
    following a symlink, so swapping a file or a folder for a symlink while the backup runs
    brings nothing from outside ``source`` in (a symlink is archived as a symlink).

    A missing ``source`` gives an empty archive. Raises ``CopyFailed`` or ``OSError`` (disk
    full); the caller removes the half-written ``target``.
    """
    databases = {p.relative_to(source).as_posix() for p in find_sqlite_files(source)}
    sides = {f"{name}{suffix}" for name in databases for suffix in SIDE_SUFFIXES}
    count = 0
    copied: list[str] = []
    with tarfile.open(target, "w:gz", compresslevel=COMPRESS_LEVEL) as tar:
        if not source.is_dir():
            return Archived((), 0)
        for parent, dirs, files, dirfd in os.fwalk(source, follow_symlinks=False):
            dirs.sort()
            rel_parent = Path(parent).relative_to(source)
            # Where this folder really is, whatever its path's parts point to now.
            real_parent = Path(os.readlink(f"/proc/self/fd/{dirfd}"))
            for name in dirs:
                _add_entry(tar, name, dirfd, (rel_parent / name).as_posix())
            for name in sorted(files):
                rel = (rel_parent / name).as_posix()
                if rel in sides:
                    continue
                if rel in databases:
                    snapshot = staging / f"db{len(os.listdir(staging))}"
                    found = _snapshot(real_parent / name, name, dirfd, snapshot)
                    if found is None:
                        continue  # deleted or replaced by its app meanwhile
                    info = tar.gettarinfo(snapshot, arcname=rel)
                    info.uid, info.gid = found.st_uid, found.st_gid
                    info.mode = stat.S_IMODE(found.st_mode)
                    with snapshot.open("rb") as f:
                        tar.addfile(info, f)
                    snapshot.unlink()
                    copied.append(rel)
                    count += 1
                    continue
                if _add_entry(tar, name, dirfd, rel) == "file":
                    count += 1
    return Archived(tuple(sorted(copied)), count)


def _add_entry(tar: tarfile.TarFile, name: str, dirfd: int, rel: str) -> str | None:
    """Archive ``name`` of the folder ``dirfd`` as ``rel``: a folder (its entry only), a
    symlink (as one) or a regular file (read from a descriptor opened without following a
    symlink). Sockets, FIFOs and what vanished are left out. What was added, or None."""
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    info = tarfile.TarInfo(rel)
    info.uid, info.gid, info.mode = st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        return "dir"
    if stat.S_ISLNK(st.st_mode):
        try:
            info.linkname = os.readlink(name, dir_fd=dirfd)
        except OSError:
            return None
        info.type = tarfile.SYMTYPE
        tar.addfile(info)
        return "symlink"
    if not stat.S_ISREG(st.st_mode):
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
    except OSError:
        return None  # gone, or a symlink now (ELOOP): not followed
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        tar.addfile(tar.gettarinfo(arcname=rel, fileobj=f), f)
    return "file"


def _snapshot(real: Path, name: str, dirfd: int, snapshot: Path) -> os.stat_result | None:
    """Copy the database ``name`` of the folder ``dirfd`` (whose own path is ``real``'s
    parent) into ``snapshot``; its stat, or None if it is gone or no longer the regular file
    it was each time it is tried (the app replaced it, or swapped a symlink in: never copied
    through one). ``CopyFailed`` otherwise."""
    for _ in range(3):
        try:
            found = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(found.st_mode):
            return None
        try:
            copy_database(real, snapshot, expect=found)
            return found
        except CopyFailed:
            try:
                now = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                return None
            if (now.st_dev, now.st_ino, now.st_mode) == (found.st_dev, found.st_ino,
                                                         found.st_mode):
                raise  # the same file, and still no copy: a real failure
    return None


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
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, filter="data")
            return
        # Python before 3.11.4 (Debian 12's 3.11.2) has no extraction filters: the members
        # were checked above; what the "data" filter also does is drop special mode bits.
        members = tar.getmembers()
        for member in members:
            member.mode &= 0o777
        tar.extractall(target, members=members)
