"""Copy a live SQLite database into one self-contained file, and check a copy.

Apps keep writing while a backup runs, so a plain file copy may catch a database half-written,
and in WAL mode the newest commits live in the ``-wal`` file beside it. SQLite's online backup
API reads a consistent snapshot through SQLite itself; the copy is then switched to rollback
journal mode, so the result is one file that needs no ``-wal`` or ``-shm`` to be complete.

Also used by server export/import (#9): keep these signatures stable.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from pathlib import Path

from bindrop.errors import CopyFailed

#: The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"
#: Files SQLite keeps beside a database; never databases themselves.
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
# A writer holding the lock briefly (a commit) must not fail the copy.
BUSY_TIMEOUT_MS = 10_000


def is_sqlite_file(path: Path) -> bool:
    """True when ``path`` is a regular file (not a symlink) starting with SQLite's header."""
    try:
        if path.is_symlink() or not path.is_file():
            return False
        with path.open("rb") as f:
            return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def find_sqlite_files(directory: Path) -> list[Path]:
    """Every SQLite database under ``directory`` (recursively, symlinks not followed), sorted.

    Found by their header, whatever their name; ``-wal``/``-shm``/``-journal`` side files are
    never listed. A missing directory has none.
    """
    found: list[Path] = []
    for parent, dirs, files in os.walk(directory, followlinks=False):
        dirs.sort()
        for name in files:
            path = Path(parent) / name
            if not name.endswith(SIDE_SUFFIXES) and is_sqlite_file(path):
                found.append(path)
    return sorted(found)


def copy_database(src: Path, dst: Path, expect: os.stat_result | None = None) -> None:
    """Copy the database at ``src`` into a new single file at ``dst`` while others write it.

    The snapshot is one read transaction of ``src`` (the commits before it, none after), taken
    with the online backup API, so ``-wal`` contents are included and never copied raw. ``dst``
    is in rollback-journal mode and complete on its own. It is written as ``dst.part`` and
    renamed into place only when complete and synced: on any failure (disk full, unreadable
    source) nothing is left at ``dst`` and ``CopyFailed`` is raised. An existing ``dst`` is
    replaced. ``src`` is opened read-write (as its app does, so SQLite may roll back a hot
    journal) but never written otherwise.

    ``expect``: the ``lstat`` of ``src`` when it was found, for a database in a folder someone
    else controls (an app's data, backed up as root). The copy is then refused
    (``CopyFailed``) unless the file SQLite opened is that very file, and every other file it
    opened (``-wal``, ``-shm``) is on the same filesystem with the same owner: the folder's
    owner cannot swap the database (or its ``-wal``) for a symlink to a file it may not read,
    such as another app's database, and have it copied into its own backup. ``src`` must
    then be the database's real path (no symlink in it, ``bindrop.care.archive`` takes it
    from the folder's descriptor): a path SQLite opened through a symlink is refused.
    """
    part = dst.with_name(dst.name + ".part")
    _remove(part)
    try:
        before = _open_fds() if expect is not None else set()
        real = str(src)  # with ``expect``: where the database really is (no symlink in it)
        source = sqlite3.connect(f"file:{_uri_path(src)}?mode=rw", uri=True,
                                 timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            if expect is not None and not _opened_as_expected(before, expect, real,
                                                                   part.parent):
                raise CopyFailed(f"{src} changed while it was being copied")
            target = sqlite3.connect(part, isolation_level=None)
            try:
                # pages=-1: all in one step, one read transaction: a consistent snapshot that
                # writers in WAL mode do not block (stepwise copies restart on every write).
                source.backup(target, pages=-1)
                if expect is not None and not _opened_as_expected(before, expect, real,
                                                                   part.parent):
                    raise CopyFailed(f"{src} changed while it was being copied")
                target.execute("PRAGMA journal_mode = DELETE")
            finally:
                target.close()
        finally:
            source.close()
        fsync(part)
        os.replace(part, dst)
    except (sqlite3.Error, OSError, CopyFailed) as exc:
        _remove(part)
        _remove(part.with_name(part.name + "-journal"))
        if isinstance(exc, CopyFailed):
            raise
        raise CopyFailed(f"could not copy the database {src}: {exc}") from None


def _open_fds() -> set[int]:
    try:
        return {int(n) for n in os.listdir("/proc/self/fd")}
    except OSError:
        return set()


def _opened_as_expected(before: set[int], expect: os.stat_result, real: str,
                        skip: Path) -> bool:
    """Every regular file opened since ``before`` (outside ``skip``, where the copy goes) is
    the database at ``real`` (its resolved path, taken before) with ``expect``'s inode, or
    its ``-wal``/``-shm``/``-journal``. None opened: SQLite shares a file this process
    already holds."""
    names = {real, *(real + suffix for suffix in SIDE_SUFFIXES)}
    for fd in _open_fds() - before:
        try:
            st = os.fstat(fd)
            where = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (listdir's own)
        if not stat.S_ISREG(st.st_mode) or where.startswith(f"{skip}/"):
            continue
        if where not in names:
            return False
        if where == real and (st.st_dev, st.st_ino) != (expect.st_dev, expect.st_ino):
            return False
    return True


def integrity_check(path: Path) -> str | None:
    """``None`` when ``PRAGMA integrity_check`` of the database at ``path`` says "ok";
    otherwise what is wrong (its report, or why the file cannot be read as a database).

    Opens the file read-only and writes nothing.
    """
    if not is_sqlite_file(path):
        return f"{path.name} is not an SQLite database"
    try:
        conn = sqlite3.connect(f"file:{_uri_path(path)}?mode=ro", uri=True)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"{path.name}: {exc}"
    report = "; ".join(str(row[0]) for row in rows)
    return None if report == "ok" else f"{path.name}: {report}"


def _uri_path(path: Path) -> str:
    # A file: URI treats ? and # specially; percent-encode them (and % itself).
    text = str(path.absolute())
    return text.replace("%", "%25").replace("?", "%3f").replace("#", "%23")


def fsync(path: Path) -> None:
    """Flush ``path`` (a file, or a folder after a rename in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
