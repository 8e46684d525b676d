"""``bindrop server export``: the whole server as one tar stream, written as it is read.

Consistency: bindrop's database is one snapshot (the online backup API), and the blobs of
the releases it names are immutable; each app's SQLite databases are snapshots of their own
(taken one after another, while the apps run); other app files are read as they are at that
moment. Only one database snapshot at a time sits on disk (``.export-*`` in the state
directory, removed at the end); nothing else is copied.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import socket
import sqlite3
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from bindrop import __version__
from bindrop.care.sqlite_copy import SIDE_SUFFIXES, copy_database, is_sqlite_file
from bindrop.errors import NotFound
from bindrop.moving.bucket import BlobBucket, describe_bucket
from bindrop.moving.install_options import read_install_options
from bindrop.moving.manifest import (
    DATABASE,
    MANIFEST,
    BundleApp,
    BundleFile,
    FileKind,
    Manifest,
    render_manifest,
)
from bindrop.moving.places import app_data_dir
from bindrop.settings import Settings

CHUNK = 1024 * 1024
Warn = Callable[[str], None]


@dataclass
class BundleWriter:
    tar: tarfile.TarFile
    files: list[BundleFile] = field(default_factory=list)
    total: int = 0

    def add_dir(self, name: str, mode: int) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = mode & 0o7777
        self.tar.addfile(info)

    def add_file(self, name: str, path: Path, kind: FileKind, mode: int | None = None) -> None:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            reader = _HashingReader(f, size)
            info = tarfile.TarInfo(name)
            info.size = size
            info.mode = (os.fstat(f.fileno()).st_mode if mode is None else mode) & 0o7777
            self.tar.addfile(info, reader)
        self.files.append(BundleFile(name, size, reader.hash.hexdigest(), kind, info.mode))
        self.total += size

    def add_bytes(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        self.tar.addfile(info, io.BytesIO(data))


class _HashingReader(io.RawIOBase):
    """Exactly ``size`` bytes of ``f`` (zeros if it shrank while read, cut if it grew), hashed
    as handed out: the tar header's size was written before the bytes."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f, self.left, self.hash = f, size, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(n) if n else b""
        if len(data) < n:
            data += bytes(n - len(data))
        self.left -= len(data)
        self.hash.update(data)
        return data


def read_bundle_apps(db: Path) -> tuple[list[BundleApp], set[str]]:
    """The apps and the sha256 of every release blob in the database file ``db``. Reads only."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        hosts: dict[str, list[str]] = {}
        for row in conn.execute("SELECT app, host FROM hosts ORDER BY app, position"):
            hosts.setdefault(row["app"], []).append(row["host"])
        apps = [BundleApp(name=r["name"], hosts=tuple(hosts.get(r["name"], ())),
                          desired_state=r["desired_state"],
                          current_release=r["current_release"], system=bool(r["system"]),
                          health_path=r["health_path"])
                for r in conn.execute("SELECT * FROM apps ORDER BY name")]
        blobs = {r[0] for r in conn.execute("SELECT DISTINCT sha256 FROM releases")}
    except sqlite3.Error as exc:
        raise NotFound(f"bindrop's database {db} cannot be read: {exc}") from None
    finally:
        conn.close()
    return apps, blobs


def export_bundle(settings: Settings, out: IO[bytes], *, warn: Warn = lambda _m: None,
                  bucket: BlobBucket | None = None) -> Manifest:
    """Write the bundle of this server to ``out`` (a stream; never seeked) and return its
    manifest. ``NotFound`` when there is no bindrop database here.

    With ``bucket``, release blobs are uploaded there (unless it has them) and only listed
    in the manifest, so the bundle carries data and settings alone."""
    if not settings.db_path.is_file():
        raise NotFound(f"there is no bindrop database at {settings.db_path}: run this on "
                       "the server, as root (`bindrop install` creates it)")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=settings.state_dir) as tmp, \
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        scratch = Path(tmp)
        w = BundleWriter(tar)
        snapshot = scratch / DATABASE
        copy_database(settings.db_path, snapshot)
        apps, blob_names = read_bundle_apps(snapshot)
        w.add_file(DATABASE, snapshot, "database", 0o644)
        snapshot.unlink()
        missing = []
        for sha in sorted(blob_names):
            blob = settings.blobs_dir / sha
            if blob.is_file() and bucket is not None:
                bucket.ensure(sha, blob)
                w.files.append(BundleFile(f"blobs/{sha}", blob.stat().st_size, sha,
                                          "bucket-blob", 0o555))
            elif blob.is_file():
                w.add_file(f"blobs/{sha}", blob, "blob", 0o555)
            else:
                missing.append(sha)
                warn(f"blob {sha[:12]} of a release is not on disk; that release is not "
                     "in the bundle")
        skipped: list[str] = []
        for app in apps:
            root = app_data_dir(settings, app.name)
            if root.is_dir() and not app.system:  # a system app's data stays its server's
                add_tree(w, root, f"apps/{app.name}", scratch, skipped, warn)
        if settings.etc_dir.is_dir():
            add_tree(w, settings.etc_dir, "etc", scratch, skipped, warn, sqlite=False)
        manifest = Manifest(
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            source=socket.gethostname(), bindrop_version=__version__,
            files=tuple(w.files), apps=tuple(apps), missing_blobs=tuple(missing),
            skipped=tuple(skipped),
            bucket=describe_bucket(bucket.config) if bucket is not None else None,
            install=_install_options(settings, apps),
        )
        w.add_bytes(MANIFEST, render_manifest(manifest))
    return manifest


def _install_options(settings: Settings, apps: list[BundleApp]) -> dict[str, object] | None:
    options = read_install_options(settings, [h for a in apps if a.system for h in a.hosts])
    return options.to_dict() if options is not None else None


def add_tree(w: BundleWriter, root: Path, prefix: str, scratch: Path, skipped: list[str],
              warn: Warn, *, sqlite: bool = True) -> None:
    """Every directory and regular file under ``root`` as ``prefix/<relative path>``; SQLite
    databases as snapshots (their -wal/-shm/-journal files are then left out)."""
    w.add_dir(prefix, root.stat().st_mode)
    for path, st in _walk(root):
        name = f"{prefix}/{path.relative_to(root).as_posix()}"
        if stat.S_ISDIR(st.st_mode):
            w.add_dir(name, st.st_mode)
        elif not stat.S_ISREG(st.st_mode):
            skipped.append(name)
            warn(f"{name} is not a regular file or directory; not exported")
        elif sqlite and path.name.endswith(SIDE_SUFFIXES) and is_sqlite_file(
                path.with_name(path.name.rsplit("-", 1)[0])):
            continue  # inside the database's snapshot
        elif sqlite and is_sqlite_file(path):
            snapshot = scratch / "app.db"
            copy_database(path, snapshot)
            w.add_file(name, snapshot, "sqlite", st.st_mode)
            snapshot.unlink()
        else:
            with contextlib.suppress(FileNotFoundError):  # removed while we walked
                w.add_file(name, path, "file", st.st_mode)


def _walk(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Depth-first, sorted, symlinks not followed (a symlink is reported, not entered)."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:  # removed by its app while we walked
        return
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        yield Path(entry.path), st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(Path(entry.path))
