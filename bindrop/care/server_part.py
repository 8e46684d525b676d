"""What a server backup holds beyond the databases and the apps' data: ``server.tar.gz``.

    etc/<path>       /etc/bindrop: settings, TLS material, care and alert settings
    blobs.json       every blob the releases need: sha256, size, and where it is kept
    blobs/<sha256>   those blobs themselves, only when there is no bucket

With a bucket, every blob is made sure to be there (``<prefix>/blobs/sha256/<digest>``,
checked after the write) before the part is written, so the backup lists only what the
bucket has. ``bindrop server restore`` reads this part back.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bindrop.care.archive import COMPRESS_LEVEL
from bindrop.errors import InvalidInput

_SHA256 = re.compile(r"[0-9a-f]{64}")
SERVER_PART = "server.tar.gz"
BLOBS_LIST = "blobs.json"
#: Where a blob is kept: in the bucket, or in this part.
IN_BUCKET = "bucket"
IN_PART = "part"


class BlobMirror(Protocol):
    """The bucket's side of blobs (``bindrop.care.s3.S3Backups``)."""

    def ensure_blob(self, sha256: str, path: Path) -> bool: ...

    def blob_size(self, sha256: str) -> int | None: ...


@dataclass(frozen=True)
class NeededBlob:
    sha256: str
    size: int
    where: str


def needed_blobs(db: Path) -> list[str]:
    """The sha256 of every release's blob in the database file ``db``. Reads only."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return sorted({r[0] for r in conn.execute("SELECT DISTINCT sha256 FROM releases")})
    finally:
        conn.close()


def render_blobs_list(blobs: Iterable[NeededBlob], bucket: Mapping[str, Any] | None) -> bytes:
    """``blobs.json``. Pure."""
    return (json.dumps({"bucket": dict(bucket) if bucket else None,
                        "blobs": [{"sha256": b.sha256, "size": b.size, "where": b.where}
                                  for b in blobs]}, indent=1, sort_keys=True) + "\n").encode()


def parse_blobs_list(raw: bytes) -> tuple[list[NeededBlob], dict[str, Any] | None]:
    """The blobs and the bucket (where, no keys) of ``blobs.json``; ``InvalidInput``."""
    try:
        data = json.loads(raw)
        blobs = [NeededBlob(str(b["sha256"]), int(b["size"]), str(b["where"]))
                 for b in data["blobs"]]
        bucket = data.get("bucket")
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"the backup's {BLOBS_LIST} is not valid ({exc})") from None
    if any(b.where not in (IN_BUCKET, IN_PART) or not _SHA256.fullmatch(b.sha256)
           or b.size < 0 for b in blobs) or (
            bucket is not None and not isinstance(bucket, dict)):
        raise InvalidInput(f"the backup's {BLOBS_LIST} is not valid")
    return blobs, bucket


def write_server_part(target: Path, *, etc_dir: Path, blobs_dir: Path, db_snapshot: Path,
                      mirror: BlobMirror | None, bucket: Mapping[str, Any] | None
                      ) -> tuple[int, list[str]]:
    """Write ``server.tar.gz`` at ``target``; return how many files it holds and the
    problems found (blobs a release names that are not on disk: that release cannot be
    restored). ``BackupFailed`` when a blob cannot be written to the bucket."""
    problems: list[str] = []
    listed: list[NeededBlob] = []
    count = 0
    with tarfile.open(target, "w:gz", compresslevel=COMPRESS_LEVEL) as tar:
        if etc_dir.is_dir():
            tar.add(etc_dir, arcname="etc", recursive=True)
            count += sum(1 for p in etc_dir.rglob("*") if p.is_file())
        for sha in needed_blobs(db_snapshot):
            blob = blobs_dir / sha
            if not blob.is_file():
                # Evicted from the cache by gc when the bucket had it.
                size = mirror.blob_size(sha) if mirror is not None else None
                if size is None:
                    problems.append(f"blob {sha[:12]} of a release is neither on disk nor "
                                    "in the bucket: that release cannot be restored")
                else:
                    listed.append(NeededBlob(sha, size, IN_BUCKET))
                continue
            size = blob.stat().st_size
            if mirror is not None:
                mirror.ensure_blob(sha, blob)
                listed.append(NeededBlob(sha, size, IN_BUCKET))
            else:
                tar.add(blob, arcname=f"blobs/{sha}")
                listed.append(NeededBlob(sha, size, IN_PART))
                count += 1
        data = render_blobs_list(listed, bucket)
        info = tarfile.TarInfo(BLOBS_LIST)
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
        count += 1
    return count, problems
