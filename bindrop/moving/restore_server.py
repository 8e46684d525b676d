"""``bindrop server restore``: a dead server rebuilt, on a fresh one, from a server backup.

A server backup (``bindrop backup run``) holds bindrop's database, each app's data and
``server.tar.gz`` (/etc/bindrop and the list of blobs the releases need: in the bucket, or in
the part). Restore turns it into the bundle ``bindrop server import`` reads, and hands that to
the importer, so there is one staging + verify + swap, not two:

1. find the backup (the newest complete server backup in the bucket, a chosen one, or a
   local folder) and download it into a staging folder beside bindrop's database;
2. check every part against the backup's manifest (size, sha256) and each archive's names;
3. write the bundle (database, apps' data, /etc/bindrop, blobs from the part or listed as in
   the bucket) with a manifest of what was written;
4. import it: every file and every blob (downloaded from the bucket and checked against its
   name) is verified before the hub stops and anything moves into place. A damaged or
   incomplete backup is refused with the server as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bindrop import __version__
from bindrop.care.archive import extract_archive
from bindrop.care.config import S3Config
from bindrop.care.local import LocalBackups
from bindrop.care.manifest import (
    BINDROP_PART,
    MANIFEST,
    Manifest,
    check_parts,
    parse_backup_id,
    parse_manifest,
)
from bindrop.care.s3 import S3Backups
from bindrop.care.server_part import BLOBS_LIST, IN_BUCKET, SERVER_PART, parse_blobs_list
from bindrop.errors import BindropError, Conflict, InvalidInput, NotFound
from bindrop.moving.export import BundleWriter, add_tree, read_bundle_apps
from bindrop.moving.importer import HubControl, ImportResult, existing_apps, import_bundle
from bindrop.moving.manifest import DATABASE, BundleFile, render_manifest
from bindrop.moving.manifest import MANIFEST as BUNDLE_MANIFEST
from bindrop.moving.manifest import Manifest as BundleManifest
from bindrop.settings import Settings

#: How a refused backup's message starts (the importer's refusals start with its own).
REFUSED = "backup refused, nothing was changed"
Log = Callable[[str], None]


@dataclass(frozen=True)
class Restored:
    backup_id: str
    source: str
    imported: ImportResult

    def to_dict(self) -> dict[str, Any]:
        return {"backup": self.backup_id, "from": self.source, **self.imported.to_dict()}


def is_complete(manifest: Manifest) -> bool:
    """A server backup this bindrop can rebuild a server from (made since #16)."""
    names = {p.name for p in manifest.parts}
    return manifest.app is None and {BINDROP_PART, SERVER_PART} <= names


def choose_server_backup(manifests: list[Manifest], backup_id: str | None) -> Manifest:
    """The chosen backup, or the newest complete server backup; ``NotFound`` or
    ``InvalidInput`` (with what to do) otherwise. Pure."""
    if backup_id is not None:
        parse_backup_id(backup_id)
        chosen = next((m for m in manifests if m.id == backup_id), None)
        if chosen is None:
            raise NotFound(f"there is no backup {backup_id}; `bindrop backup list` shows them")
        if not is_complete(chosen):
            raise InvalidInput(f"{REFUSED}: {backup_id} is not a whole-server backup made by "
                               "a bindrop that keeps /etc/bindrop and the blobs' list")
        return chosen
    complete = sorted((m for m in manifests if is_complete(m)),
                      key=lambda m: parse_backup_id(m.id)[0])
    if not complete:
        raise NotFound("there is no complete server backup there; make one on the old "
                       "server with `bindrop backup run` (a bucket keeps it off the server)")
    return complete[-1]


def restore_from_bucket(settings: Settings, s3: S3Config, hub: HubControl, *,
                        backup_id: str | None = None, replace: bool = False,
                        environ: Mapping[str, str] | None = None,
                        log: Log = lambda _m: None) -> Restored:
    """Restore the chosen (or newest complete) server backup of the bucket ``s3``."""
    _check_fresh(settings, replace)
    bucket = S3Backups(s3)
    manifest = choose_server_backup(bucket.list(), backup_id)
    log(f"restoring {manifest.id} from {bucket.where}")
    with _staging(settings) as staging:
        folder = staging / "backup"
        bucket.download(manifest.id, folder)
        return _restore(settings, folder, manifest, hub, replace=replace,
                        environ=environ, s3=s3, log=log, source=bucket.where,
                        downloaded=True)


def restore_from_folder(settings: Settings, folder: Path, hub: HubControl, *,
                        backup_id: str | None = None, replace: bool = False,
                        environ: Mapping[str, str] | None = None,
                        log: Log = lambda _m: None) -> Restored:
    """Restore from a local backup: the folder of one backup (holding its manifest.json),
    or a folder of backups (the newest complete one, or ``backup_id``)."""
    _check_fresh(settings, replace)
    if (folder / MANIFEST).is_file():
        manifest = parse_manifest((folder / MANIFEST).read_text())
        choose_server_backup([manifest], manifest.id)
    else:
        manifest = choose_server_backup(LocalBackups(folder).list(), backup_id)
        folder = folder / manifest.id
    log(f"restoring {manifest.id} from {folder}")
    return _restore(settings, folder, manifest, hub, replace=replace, environ=environ,
                    s3=None, log=log, source=str(folder))


@contextlib.contextmanager
def _staging(settings: Settings) -> Iterator[Path]:
    """A folder beside bindrop's database (same disk: the import renames from it)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=".restore-", dir=settings.state_dir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _check_fresh(settings: Settings, replace: bool) -> None:
    """``Conflict`` before anything is downloaded when this server has apps (the import
    would refuse them only after)."""
    present = existing_apps(settings)
    if present and not replace:
        raise Conflict(f"this server has apps already ({', '.join(sorted(present))}); "
                       "restore onto a fresh server, or pass --replace to overwrite them")


def _restore(settings: Settings, folder: Path, manifest: Manifest, hub: HubControl, *,
             replace: bool, environ: Mapping[str, str] | None, s3: S3Config | None, log: Log,
             source: str, downloaded: bool = False) -> Restored:
    problems = check_parts(manifest, folder)
    if problems:
        raise InvalidInput(f"{REFUSED}: {'; '.join(problems[:5])}")
    with _staging(settings) as staging:
        bundle = staging / "bundle.tar"
        try:
            with bundle.open("wb") as out:
                write_bundle(folder, manifest, staging, out, s3)
        except (OSError, EOFError, tarfile.TarError, InvalidInput) as exc:
            reason = exc.message if isinstance(exc, BindropError) else str(exc)
            raise InvalidInput(f"{REFUSED}: {reason}") from None
        # Only the bundle is needed now: less disk for the import's own staging copy.
        shutil.rmtree(staging / "unpacked", ignore_errors=True)
        if downloaded:
            shutil.rmtree(folder, ignore_errors=True)
        log(f"{manifest.id}: every part matches its sha256; verifying its contents")
        with bundle.open("rb") as source_stream:
            imported = import_bundle(settings, source_stream, hub, replace=replace, log=log,
                                     environ=environ)
    return Restored(manifest.id, source, imported)


def write_bundle(folder: Path, manifest: Manifest, scratch: Path, out: Any,
                 s3: S3Config | None) -> BundleManifest:
    """The bundle of a checked server backup in ``folder``, written to ``out``."""
    unpacked = scratch / "unpacked"
    unpacked.mkdir()
    extract_archive(folder / BINDROP_PART, unpacked / "bindrop")
    extract_archive(folder / SERVER_PART, unpacked / "server")
    db = unpacked / "bindrop" / DATABASE
    if not db.is_file():
        raise InvalidInput(f"{BINDROP_PART} holds no {DATABASE}")
    blobs_list = unpacked / "server" / BLOBS_LIST
    if not blobs_list.is_file():
        raise InvalidInput(f"{SERVER_PART} holds no {BLOBS_LIST}")
    blobs, bucket = parse_blobs_list(blobs_list.read_bytes())
    apps, _names = read_bundle_apps(db)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        w = BundleWriter(tar)
        w.add_file(DATABASE, db, "database", 0o644)
        for blob in blobs:
            if blob.where == IN_BUCKET:
                w.files.append(BundleFile(f"blobs/{blob.sha256}", blob.size, blob.sha256,
                                          "bucket-blob", 0o555))
            else:
                w.add_file(f"blobs/{blob.sha256}",
                           unpacked / "server" / "blobs" / blob.sha256, "blob", 0o555)
        skipped: list[str] = []
        system = {a.name for a in apps if a.system}
        for part in manifest.parts:
            if part.app is None or part.app in system:
                continue  # a system app's data is the restoring server's own
            data = unpacked / "apps" / part.app
            extract_archive(folder / part.name, data)
            # Already snapshots: copied as they are, and checked by the import.
            add_tree(w, data, f"apps/{part.app}", scratch, skipped, _ignore)
        if (unpacked / "server" / "etc").is_dir():
            add_tree(w, unpacked / "server" / "etc", "etc", scratch, skipped, _ignore,
                      sqlite=False)
        if bucket is not None and s3 is not None and bucket.get("bucket") == s3.bucket:
            bucket = s3.describe()
        bundle = BundleManifest(
            created_at=manifest.created_at or dt.datetime.now(dt.UTC).isoformat(),
            source=f"backup {manifest.id}", bindrop_version=__version__,
            files=tuple(w.files), apps=tuple(apps), skipped=tuple(skipped), bucket=bucket)
        w.add_bytes(BUNDLE_MANIFEST, render_manifest(bundle))
    return bundle


def _ignore(_message: str) -> None:
    pass
