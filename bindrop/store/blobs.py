"""The blob store: uploaded binaries and bundles, addressed by the sha256 of their bytes.

``<root>/<sha256>`` files, mode 0555 so a ``DynamicUser`` service can read and execute them
and nothing can change them in place. A blob appears whole or not at all: bytes stream into a
temp file beside it (``.upload-*``), are hashed while written, fsynced, and renamed into
place. The same bytes uploaded twice are stored once.

With a bucket (a ``BlobRemote``), the store is a cache of it: every uploaded blob is written
there too (``mirror``), and a blob missing here (evicted by ``bindrop gc``) is fetched back
and checked against its name before anything runs it (``fetch``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bindrop.domain.sizes import format_bytes
from bindrop.errors import BindropError, InvalidInput, NotFound, TooLarge
from bindrop.settings import Settings
from bindrop.store.bundles import unpack_bundle
from bindrop.store.releases import validate_sha256

BLOB_MODE = 0o555
DIR_MODE = 0o755
CHUNK_SIZE = 1024 * 1024
TEMP_PREFIX = ".upload-"
# A temp file this old belongs to no upload in progress: the hub died during one.
STALE_TEMP_S = 24 * 3600.0

_SHA256_NAME = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its sha256 (lowercase hex), size in bytes and path."""

    sha256: str
    size: int
    path: Path


class _BlobWriter:
    """One upload in progress: a temp file in the blob directory and a running hash."""

    def __init__(self, root: Path, max_size: int, expected_sha256: str | None) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size <= 0:
            raise ValueError(f"max_size must be a positive int, not {max_size!r}")
        self.root = root
        self.max_size = max_size
        self.expected = validate_sha256(expected_sha256.lower()) if expected_sha256 else None
        fd, name = tempfile.mkstemp(dir=root, prefix=TEMP_PREFIX)
        self.temp = Path(name)
        self.file = os.fdopen(fd, "wb")
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError(f"upload chunks must be bytes, not {type(chunk).__name__}")
        self.size += len(chunk)
        if self.size > self.max_size:
            raise TooLarge("the upload is larger than the limit of "
                           f"{format_bytes(self.max_size, 'exact')}")
        self.hash.update(chunk)
        self.file.write(chunk)

    def finish(self) -> BlobInfo:
        """Check, fsync and rename into place; on any error remove the temp file."""
        try:
            return self._finish()
        except BaseException:
            self.abort()
            raise

    def _finish(self) -> BlobInfo:
        if self.size == 0:
            raise InvalidInput("the upload is empty")
        sha256 = self.hash.hexdigest()
        if self.expected is not None and sha256 != self.expected:
            raise InvalidInput(
                f"the upload's sha256 is {sha256} but {self.expected} was expected: it was "
                "damaged or changed on the way; upload it again"
            )
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        final = self.root / sha256
        if final.is_file() and final.stat().st_size == self.size:
            self.temp.unlink()
            os.utime(final)  # uploaded again just now: as fresh as a new one, for gc
        else:
            os.chmod(self.temp, BLOB_MODE)
            os.replace(self.temp, final)
            _fsync_dir(self.root)
        return BlobInfo(sha256, self.size, final)

    def abort(self) -> None:
        self.file.close()
        self.temp.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobRemote(Protocol):
    """Where blobs are kept off the server (an S3 bucket: ``bindrop.moving.bucket``)."""

    @property
    def where(self) -> str: ...

    def ensure(self, sha256: str, path: Path) -> bool:
        """Upload the file unless the remote has it; check it is there whole after the
        write; True if sent. ``BindropError`` on failure."""
        ...

    def size(self, sha256: str) -> int | None: ...

    def download(self, sha256: str, dest: Path) -> tuple[int, str]:
        """Write the blob to the new file ``dest``; return its size and the sha256 of the
        bytes received (the caller compares)."""
        ...


class BlobStore:
    """Content-addressed, read-only files under ``root`` (``Settings.blobs_dir``), a cache
    of ``remote`` when there is one."""

    def __init__(self, root: Path, remote: BlobRemote | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        #: Replaced whole when the bucket settings change (``bindrop bucket set|off``).
        self.remote = remote

    async def mirror(self, sha256: str) -> bool:
        """Write the local blob ``sha256`` to the remote (unless it has it); True if sent,
        False also when there is no remote. ``BindropError`` when the write fails."""
        remote = self.remote
        if remote is None:
            return False
        return await asyncio.to_thread(remote.ensure, sha256, self.path(sha256))

    async def fetch(self, sha256: str) -> bool:
        """Bring the blob back from the remote when it is not here; True if fetched. Its
        bytes must hash to its name, or nothing is kept (``InvalidInput``); ``NotFound``
        when neither here nor a remote has it."""
        if self.exists(sha256):
            return False
        remote = self.remote
        if remote is None:
            raise NotFound(f"no uploaded file with sha256 {sha256} here (and no bucket is "
                           "set up to fetch it from); deploy it again")
        return await asyncio.to_thread(self._fetch, remote, sha256)

    def _fetch(self, remote: BlobRemote, sha256: str) -> bool:
        fd, name = tempfile.mkstemp(dir=self.root, prefix=TEMP_PREFIX)
        os.close(fd)
        temp = Path(name)
        try:
            temp.unlink()
            try:
                _size, got = remote.download(validate_sha256(sha256), temp)
            except BindropError as exc:
                raise NotFound(f"blob {sha256[:12]} is neither here nor in {remote.where}: "
                               f"{exc.message}") from None
            if got != sha256:
                raise InvalidInput(f"the copy of blob {sha256[:12]} in {remote.where} is "
                                   f"damaged (its bytes hash to {got[:12]}); not used")
            os.chmod(temp, BLOB_MODE)
            os.replace(temp, self.root / sha256)
            _fsync_dir(self.root)
            return True
        finally:
            temp.unlink(missing_ok=True)

    @classmethod
    def open(cls, settings: Settings) -> BlobStore:
        return cls(settings.blobs_dir)

    async def put_stream(
        self,
        chunks: Iterable[bytes] | AsyncIterable[bytes],
        *,
        max_size: int,
        expected_sha256: str | None = None,
    ) -> BlobInfo:
        """Store the bytes of ``chunks`` and return where they are.

        Leaves nothing behind on any error, cancellation included: ``TooLarge`` as soon as
        more than ``max_size`` bytes arrive (the rest is not read), ``InvalidInput`` for an
        empty upload or one whose sha256 is not ``expected_sha256``. The fsync and rename run
        in a thread, so a large upload does not stall the event loop.
        """
        writer = _BlobWriter(self.root, max_size, expected_sha256)
        try:
            if isinstance(chunks, AsyncIterable):
                async for chunk in chunks:
                    writer.write(chunk)
            else:
                for chunk in chunks:
                    writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        # finish() cleans up after itself, even if this task is cancelled while it runs.
        return await asyncio.to_thread(writer.finish)

    def put_file(self, path: Path, max_size: int) -> BlobInfo:
        """Store a copy of the file at ``path``; same contract as ``put_stream``."""
        writer = _BlobWriter(self.root, max_size, None)
        try:
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK_SIZE):
                    writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        return writer.finish()

    def path(self, sha256: str) -> Path:
        """Return where the blob ``sha256`` is or would be. Pure; ``InvalidInput`` for a
        string that is not a sha256."""
        return self.root / validate_sha256(sha256)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def touch(self, sha256: str) -> bool:
        """Mark a blob as used now (gc keeps blobs used within the hour); whether it is
        here."""
        try:
            os.utime(self.path(sha256))
        except FileNotFoundError:
            return False
        return True

    def remove(self, sha256: str) -> bool:
        """Remove a blob; return whether it was there. A running program keeps its copy."""
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    def gc(self, keep: set[str]) -> tuple[int, int]:
        """Remove every blob not in ``keep``, and temp files of uploads that died long ago.

        Returns ``(removed_count, freed_bytes)``. Files that are neither blobs nor temp files
        are left alone, and so are temp files of uploads that may be in progress.
        """
        removed = freed = 0
        stale_before = time.time() - STALE_TEMP_S
        for entry in os.scandir(self.root):
            if not entry.is_file(follow_symlinks=False):
                continue
            if _SHA256_NAME.fullmatch(entry.name):
                if entry.name in keep:
                    continue
            elif not (entry.name.startswith(TEMP_PREFIX) and entry.stat().st_mtime < stale_before):
                continue
            size = entry.stat(follow_symlinks=False).st_size
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
                freed += size
        return removed, freed

    def unpack_bundle(self, sha256: str, dest_root: Path) -> Path:
        """Unpack the bundle blob ``sha256`` into ``dest_root/<sha256>`` (see
        ``bindrop.store.bundles.unpack_bundle``); ``NotFound`` if there is no such blob."""
        if not self.exists(sha256):
            raise NotFound(f"no uploaded file with sha256 {sha256}; upload it again")
        return unpack_bundle(self.path(sha256), sha256, dest_root)
