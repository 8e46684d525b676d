"""Bundles: ``.tar.gz`` uploads unpacked into read-only directories an app runs from.

``<bundles>/<sha256>/`` holds the unpacked tree of the blob ``sha256``. It appears whole or
not at all (unpacked into a temp directory beside it, then renamed), is never changed after,
and is shared by every release that uploaded the same bytes.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from bindrop.domain.sizes import format_bytes
from bindrop.errors import InvalidInput, TooLarge
from bindrop.settings import Settings

BUNDLES_SUBDIR = "bundles"
DEFAULT_MAX_UNPACKED = 8 * 1024**3
MAX_MEMBERS = 100_000
TEMP_PREFIX = ".unpack-"


def bundles_dir(settings: Settings) -> Path:
    """Return ``<state_dir>/bundles``, where bundles are unpacked."""
    return settings.state_dir / BUNDLES_SUBDIR


def check_members(members: Sequence[tarfile.TarInfo], *, max_unpacked: int) -> None:
    """Raise unless every member of an archive may be unpacked. Pure.

    ``InvalidInput`` for an absolute path, a ``..`` component, a device file or pipe, or a
    link that points outside the bundle (or anywhere absolute); ``TooLarge`` when the files
    add up to more than ``max_unpacked`` bytes or there are too many of them.
    """
    if not members:
        raise InvalidInput("the bundle is empty: the archive holds no files")
    if len(members) > MAX_MEMBERS:
        raise TooLarge(f"the bundle holds more than {MAX_MEMBERS} entries")
    total = 0
    for member in members:
        name = member.name
        path = PurePosixPath(name)
        if path.is_absolute():
            raise InvalidInput(
                f"bundle entry {name!r} has an absolute path; archive paths must be relative "
                "(create it with `tar -czf app.tar.gz -C DIR .`)"
            )
        if ".." in path.parts:
            raise InvalidInput(f"bundle entry {name!r} contains '..'; remove it from the archive")
        if member.ischr() or member.isblk() or member.isfifo():
            raise InvalidInput(f"bundle entry {name!r} is a device file or pipe; remove it")
        if member.issym():
            _check_link(name, path.parent / member.linkname, member.linkname)
        elif member.islnk():
            _check_link(name, PurePosixPath(member.linkname), member.linkname)
        total += member.size if member.isfile() else 0
        if total > max_unpacked:
            raise TooLarge(
                f"the bundle unpacks to more than {format_bytes(max_unpacked, 'exact')}; "
                "make it smaller"
            )


def _check_link(name: str, target: PurePosixPath, linkname: str) -> None:
    depth = 0
    escapes = target.is_absolute()
    for part in target.parts:
        if part == "..":
            depth -= 1
        elif part not in (".", ""):
            depth += 1
        escapes = escapes or depth < 0
    if escapes:
        raise InvalidInput(
            f"bundle entry {name!r} links to {linkname!r}, outside the bundle; links must "
            "stay inside it"
        )


#: tarfile's extraction filters came with Python 3.11.4; Debian 12 (what `bindrop server
#: setup` installs on) has 3.11.2.
_FILTER_ERRORS: tuple[type[Exception], ...] = (
    (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ())


def _extract(tar: tarfile.TarFile, target: Path, members: list[tarfile.TarInfo]) -> None:
    """Extract the checked ``members``, with the ``data`` filter as a second guard where
    this Python has it; without it, as that filter would: no set-id or sticky bits."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(target, members=members, filter="data")
        return
    for member in members:
        member.mode &= 0o777
    tar.extractall(target, members=members)


def unpack_bundle(
    archive: Path, sha256: str, dest_root: Path, *, max_unpacked: int = DEFAULT_MAX_UNPACKED
) -> Path:
    """Unpack the ``.tar.gz`` at ``archive`` into ``dest_root/<sha256>``; return that path.

    Idempotent: an existing ``dest_root/<sha256>`` is returned as it is. Checks every member
    first (``check_members``) and extracts with tarfile's ``data`` filter as a second guard;
    ``InvalidInput`` (nothing left behind) for a damaged or unsafe archive. Afterwards the tree
    is read-only: directories 0555, files 0555 if the archive made them executable, else 0444.
    ``sha256`` must be the archive's, which the caller (the blob store) guarantees.
    """
    dest = dest_root / sha256
    if dest.is_dir():
        return dest
    dest_root.mkdir(parents=True, exist_ok=True, mode=0o755)
    temp = Path(tempfile.mkdtemp(dir=dest_root, prefix=TEMP_PREFIX))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = tar.getmembers()
                check_members(members, max_unpacked=max_unpacked)
                _extract(tar, temp, members)
        except _FILTER_ERRORS as e:
            raise InvalidInput(f"the bundle cannot be unpacked safely: {e}") from None
        except (
            tarfile.ReadError,
            tarfile.CompressionError,
            gzip.BadGzipFile,
            zlib.error,
            EOFError,
        ) as e:
            raise InvalidInput(
                f"the bundle is not a valid .tar.gz archive ({e}); create it with "
                "`tar -czf app.tar.gz -C DIR .`"
            ) from None
        _make_read_only(temp)
        try:
            os.rename(temp, dest)
        except OSError:
            # Another unpack of the same bytes won the race; its tree is the same as ours.
            if not dest.is_dir():
                raise
            remove_tree(temp)
    except BaseException:
        remove_tree(temp)
        raise
    return dest


def _make_read_only(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                os.chmod(path, 0o555 if mode & 0o100 else 0o444)
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o555)
    os.chmod(root, 0o555)


def remove_tree(path: Path) -> None:
    """Remove a directory tree, read-only parts included; nothing if it is not there."""
    if not path.exists():
        return
    # rmtree needs write permission on every directory; os.walk never yields a symlink here.
    for dirpath, _, _ in os.walk(path):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(path)


def gc_bundles(dest_root: Path, keep: set[str]) -> tuple[int, int]:
    """Remove unpacked bundles whose sha256 is not in ``keep``, and leftover temp directories.

    Returns ``(removed_count, freed_bytes)``. Call it only from the writer that unpacks
    (the hub), so no unpack is in progress.
    """
    if not dest_root.is_dir():
        return 0, 0
    removed = freed = 0
    for entry in os.scandir(dest_root):
        if entry.name in keep or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        size = sum(
            os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(path) for f in files
        )
        with contextlib.suppress(FileNotFoundError):
            remove_tree(path)
            removed += 1
            freed += size
    return removed, freed


PROCFILE = "Procfile"
PROCFILE_MAX = 64 * 1024


def read_procfile(root: Path) -> str | None:
    """The text of ``root/Procfile`` (a regular file at the bundle's root), or None.

    ``InvalidInput`` if it is larger than 64 KiB or not UTF-8. Does not write.
    """
    path = root / PROCFILE
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInput("the bundle's Procfile is not a regular file")
    if info.st_size > PROCFILE_MAX:
        raise InvalidInput(f"the bundle's Procfile is larger than {PROCFILE_MAX} bytes")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the bundle's Procfile is not UTF-8 text") from None
