"""``bindrop server import``: check a whole bundle, then put it in place.

All or nothing, in two phases:

1. **Verify** (changes nothing outside a staging directory): every member streams into
   ``.import-*`` beside bindrop's database, hashed as it is written; then the manifest (the
   last member) must list exactly the files read, with the same sizes and sha256 sums; each
   blob's bytes must hash to its name; every SQLite database must pass ``integrity_check``;
   the database must come from a schema this bindrop knows. Any failure removes the staging
   directory and raises ``InvalidInput``: the server is as it was.
2. **Apply**: the hub is stopped (it is the database's only writer; apps keep running), blobs
   and app data move into place, /etc/bindrop's files are replaced one by one, the database
   last (with the tokens of this server kept, so the token its admin holds keeps working);
   then the hub starts and, as after a reboot, starts every app that should run.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Protocol

from bindrop.care.config import CARE_FILE, load_care_settings, parse_env_file
from bindrop.care.sqlite_copy import integrity_check
from bindrop.errors import BindropError, Conflict, InvalidInput
from bindrop.moving.bucket import BlobBucket, bucket_config
from bindrop.moving.manifest import (
    DATABASE,
    MANIFEST,
    MANIFEST_LIMIT,
    Manifest,
    check_member_name,
    compare_files,
    parse_manifest,
)
from bindrop.moving.own_apps import OwnSystemApps, keep_own_system_apps
from bindrop.moving.places import HUB_UNIT, app_data_dir, apps_data_root
from bindrop.settings import Settings
from bindrop.store.migrations import MIGRATIONS

CHUNK = 1024 * 1024
#: How a refused bundle's message starts (tests and people grep for it).
REFUSED = "bundle refused, nothing was changed"


class HubControl(Protocol):
    """Stops and starts the hub around the swap of its database."""

    def stop(self) -> bool:
        """Stop the hub; return whether it was running."""
        ...

    def start(self) -> None: ...


class SystemctlHub:
    """The hub as ``bindrop.service`` of this server's systemd."""

    def stop(self) -> bool:
        active = _systemctl("is-active", "--quiet", HUB_UNIT, check=False) == 0
        if active:
            _systemctl("stop", HUB_UNIT)
        return active

    def start(self) -> None:
        # Installed but stopped, or installed just now: the hub starts the apps that should run.
        if _systemctl("cat", HUB_UNIT, check=False) == 0:
            _systemctl("start", HUB_UNIT)


def _systemctl(*args: str, check: bool = True) -> int:
    proc = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise BindropError(f"systemctl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.returncode


@dataclass(frozen=True)
class ImportResult:
    manifest: Manifest
    files: int
    bytes: int
    #: Apps that should run; the hub starts them.
    started: tuple[str, ...]
    #: The bundle's system apps, dropped, and this server's own, kept.
    system_apps: OwnSystemApps = field(default_factory=lambda: OwnSystemApps((), ()))

    def to_dict(self) -> dict[str, object]:
        m = self.manifest
        return {"source": m.source, "created_at": m.created_at, "files": self.files,
                "bytes": self.bytes, "apps": [a.name for a in m.apps],
                "started": list(self.started), "missing_blobs": list(m.missing_blobs),
                "system_apps": {"dropped": list(self.system_apps.dropped),
                                "kept": list(self.system_apps.kept)},
                "app_details": [{"name": a.name, "hosts": list(a.hosts),
                                 "current_release": a.current_release,
                                 "should_run": a.should_run, "health_path": a.health_path,
                                 "system": a.system} for a in m.apps]}


def existing_apps(settings: Settings) -> list[str]:
    """The names of the user apps (not system apps) in this server's database. Reads only."""
    if not settings.db_path.is_file():
        return []
    conn = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM apps WHERE system = 0")]
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def import_bundle(settings: Settings, source: IO[bytes], hub: HubControl, *,
                  replace: bool = False, log: Callable[[str], None] = lambda _m: None,
                  environ: Mapping[str, str] | None = None) -> ImportResult:
    """Verify the bundle read from ``source``, then restore it (see the module's docstring).

    ``Conflict`` (before reading anything) when this server has apps and ``replace`` is
    false; ``InvalidInput`` starting with ``REFUSED`` when the bundle is not whole. Blobs the
    manifest lists in a bucket are downloaded (and checked) during the verify phase, with
    the keys of this server's care settings (read with ``environ``) or the bundle's.
    """
    present = existing_apps(settings)
    if present and not replace:
        raise Conflict(f"this server has apps already ({', '.join(sorted(present))}); import "
                       "onto a fresh server, or pass --replace to overwrite them")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=settings.state_dir))
    try:
        manifest, size = _receive(source, staging, lambda m: _bucket(settings, m, staging,
                                                                     environ or {}))
        log(f"verified {len(manifest.files)} files ({size} bytes) from {manifest.source}")
        own = _own_system_apps(settings, staging)
        _apply(settings, staging, manifest, hub, log)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    started = tuple(a.name for a in manifest.apps if a.should_run and not a.system)
    return ImportResult(manifest, len(manifest.files), size, started, own)


def _own_system_apps(settings: Settings, staging: Path) -> OwnSystemApps:
    """The staged database with this server's system apps instead of the bundle's (see
    ``bindrop.moving.own_apps``); before anything outside the staging directory changes."""
    try:
        return keep_own_system_apps(settings.db_path, staging / DATABASE)
    except sqlite3.Error as exc:
        raise BindropError(f"cannot put this server's own system apps into the imported "
                           f"database ({exc}); nothing was changed") from None


# -- phase 1: verify -----------------------------------------------------------------------

def _bucket(settings: Settings, manifest: Manifest, staging: Path,
            environ: Mapping[str, str]) -> BlobBucket:
    care = staging / "etc" / CARE_FILE
    try:
        bundled = parse_env_file(care.read_text()) if care.is_file() else {}
    except InvalidInput:
        bundled = {}
    try:
        own = load_care_settings(settings, environ).s3
    except InvalidInput:
        own = None
    assert manifest.bucket is not None  # parse_manifest checked it
    return BlobBucket(bucket_config(manifest.bucket, own, bundled))


def _receive(source: IO[bytes], staging: Path,
             bucket_for: Callable[[Manifest], BlobBucket]) -> tuple[Manifest, int]:
    read: dict[str, tuple[int, str]] = {}
    dirs: dict[Path, int] = {}
    manifest_raw: bytes | None = None
    try:
        with tarfile.open(fileobj=source, mode="r|") as tar:
            for member in tar:
                if manifest_raw is not None:
                    raise InvalidInput(f"{member.name!r} follows the manifest, which must "
                                       "come last")
                rel = check_member_name(member.name)
                if member.isdir():
                    (staging / rel).mkdir(parents=True, exist_ok=True)
                    dirs[staging / rel] = member.mode
                    continue
                if not member.isfile():
                    raise InvalidInput(f"{member.name!r} is not a file or directory")
                if member.name in read:
                    raise InvalidInput(f"{member.name!r} appears twice")
                stream = tar.extractfile(member)
                assert stream is not None  # a regular file
                if member.name == MANIFEST:
                    if member.size > MANIFEST_LIMIT:
                        raise InvalidInput("the manifest is too large")
                    manifest_raw = stream.read()
                    continue
                read[member.name] = _write(stream, staging / rel, member.mode)
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidInput(f"{REFUSED}: it is not a complete tar stream ({exc}); was the "
                           "export cut short?") from None
    except InvalidInput as exc:
        raise InvalidInput(f"{REFUSED}: {exc.message}") from None
    for path, mode in dirs.items():
        path.chmod(mode & 0o7777)
    if manifest_raw is None:
        raise InvalidInput(f"{REFUSED}: it has no manifest (cut short, or not a bundle)")
    try:
        manifest = parse_manifest(manifest_raw)
    except InvalidInput as exc:
        raise InvalidInput(f"{REFUSED}: {exc.message}") from None
    # The tar's own files first: a damaged bundle is refused before anything is downloaded.
    remote = [f for f in manifest.files if f.kind == "bucket-blob"]
    problems = compare_files([f for f in manifest.files if f.kind != "bucket-blob"], read)
    if remote and not problems:
        bucket = bucket_for(manifest)
        (staging / "blobs").mkdir(exist_ok=True)
        fetched = {}
        for f in remote:
            try:
                fetched[f.path] = bucket.download(f.sha256, staging / f.path)
                (staging / f.path).chmod(f.mode & 0o777)  # 0555: apps execute blobs
            except BindropError as exc:
                raise InvalidInput(f"{REFUSED}: {exc.message}") from None
        problems = compare_files(remote, fetched)
        read.update(fetched)
    if DATABASE not in read:
        problems.append(f"{DATABASE} is missing")
    for f in manifest.files:
        if not problems and f.kind in ("database", "sqlite"):
            wrong = integrity_check(staging / f.path)
            if wrong:
                problems.append(f"{f.path} fails SQLite's integrity check: {wrong}")
        if f.kind in ("blob", "bucket-blob") and f.sha256 != PurePosixPath(f.path).name:
            problems.append(f"{f.path}'s bytes do not hash to its name")
    if not problems:
        problems += _schema_problems(staging / DATABASE)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more"
                                           if len(problems) > 5 else "")
        raise InvalidInput(f"{REFUSED}: {shown}")
    return manifest, sum(size for size, _ in read.values())


def _write(stream: IO[bytes], path: Path, mode: int) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with open(path, "xb") as out:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    path.chmod(mode & 0o777)
    return size, digest.hexdigest()


def _schema_problems(db: Path) -> list[str]:
    known = {m.name for m in MIGRATIONS}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        applied = {r[0] for r in conn.execute("SELECT name FROM migrations")}
    except sqlite3.Error as exc:
        return [f"{DATABASE} is not bindrop's database ({exc})"]
    finally:
        conn.close()
    newer = sorted(applied - known)
    return [f"{DATABASE} comes from a newer bindrop (schema {', '.join(newer)}); upgrade "
            "bindrop here first"] if newer else []


# -- phase 2: apply ------------------------------------------------------------------------

def _apply(settings: Settings, staging: Path, manifest: Manifest, hub: HubControl,
           log: Callable[[str], None]) -> None:
    _keep_tokens(settings.db_path, staging / DATABASE)
    was_running = hub.stop()
    try:
        blobs = staging / "blobs"
        if blobs.is_dir():
            settings.blobs_dir.mkdir(parents=True, exist_ok=True)
            for blob in sorted(blobs.iterdir()):
                target = settings.blobs_dir / blob.name
                if not target.exists():
                    _move(blob, target)
        apps = staging / "apps"
        if apps.is_dir():
            root = apps_data_root(settings)
            root.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            root.mkdir(mode=0o755, parents=True, exist_ok=True)
            for data in sorted(apps.iterdir()):
                _replace_tree(data, app_data_dir(settings, data.name))
        etc = staging / "etc"
        if etc.is_dir():
            settings.etc_dir.mkdir(parents=True, exist_ok=True)
            for path in sorted(p for p in etc.rglob("*") if p.is_file()):
                target = settings.etc_dir / path.relative_to(etc)
                target.parent.mkdir(parents=True, exist_ok=True)
                _move(path, target)
        for side in ("-wal", "-shm"):
            Path(f"{settings.db_path}{side}").unlink(missing_ok=True)
        settings.db_path.parent.mkdir(parents=True, exist_ok=True)
        _move(staging / DATABASE, settings.db_path)
        log(f"restored {len(manifest.apps)} apps")
    finally:
        # Even after a failure half-way: the hub serves what is in place rather than nothing.
        hub.start()
        if not was_running:
            log(f"started {HUB_UNIT}")


def _keep_tokens(current: Path, imported: Path) -> None:
    """Copy this server's tokens into the imported database (names already there win)."""
    if not current.is_file():
        return
    conn = sqlite3.connect(f"file:{imported}", uri=True)
    try:
        conn.execute("ATTACH DATABASE ? AS here", (f"file:{current}?mode=ro",))
        columns = ", ".join(r[1] for r in conn.execute("PRAGMA main.table_info(tokens)"))
        conn.execute(f"INSERT OR IGNORE INTO main.tokens ({columns}) "
                     f"SELECT {columns} FROM here.tokens")
        conn.commit()
    except sqlite3.Error:
        pass  # no tokens table here (a server never started): nothing to keep
    finally:
        conn.close()


def _move(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; across file systems (or bind mounts), copy beside ``dst``
    first and rename that, so ``dst`` is never half-written."""
    try:
        os.replace(src, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    temp = dst.with_name(f".import-{dst.name}")
    shutil.copy2(src, temp)
    os.replace(temp, dst)


def _replace_tree(src: Path, dst: Path) -> None:
    """Put the directory ``src`` at ``dst``, replacing what is there."""
    old = dst.with_name(f".replaced-{dst.name}")
    shutil.rmtree(old, ignore_errors=True)
    if dst.exists() or dst.is_symlink():
        os.replace(dst, old)
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        temp = dst.with_name(f".import-{dst.name}")
        shutil.rmtree(temp, ignore_errors=True)
        shutil.copytree(src, temp, symlinks=True)
        os.replace(temp, dst)
    with contextlib.suppress(OSError):
        # systemd chowns a StateDirectory whose owner is not the app's dynamic user.
        os.chown(dst, 0, 0)
    shutil.rmtree(old, ignore_errors=True)
