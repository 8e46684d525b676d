"""The blob store, content checks and bundles, on real files in tmp_path."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import platform
import stat
import sys
import tarfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Literal

import pytest

from bindrop.errors import InvalidInput, NotFound, TooLarge
from bindrop.settings import Settings
from bindrop.store import (
    BlobInfo,
    BlobStore,
    bundles_dir,
    check_executable_content,
    gc_bundles,
    read_head,
    sniff_kind,
)
from bindrop.store.blobs import STALE_TEMP_S
from bindrop.store.bundles import unpack_bundle

PROGRAM = b"#!/bin/sh\necho hello\n"


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore.open(Settings(root=tmp_path))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_in(path: Path) -> list[str]:
    return sorted(os.listdir(path))


async def put(
    blobs: BlobStore, *chunks: bytes, max_size: int = 1024, expected_sha256: str | None = None
) -> BlobInfo:
    return await blobs.put_stream(list(chunks), max_size=max_size, expected_sha256=expected_sha256)


# storing


async def test_stream_is_stored_read_only_under_its_sha256(blobs: BlobStore) -> None:
    info = await put(blobs, PROGRAM[:5], PROGRAM[5:])
    assert info.sha256 == sha(PROGRAM)
    assert info.size == len(PROGRAM)
    assert info.path == blobs.root / sha(PROGRAM) == blobs.path(sha(PROGRAM))
    assert info.path.read_bytes() == PROGRAM
    assert stat.S_IMODE(info.path.stat().st_mode) == 0o555
    assert files_in(blobs.root) == [sha(PROGRAM)]


async def test_async_stream_is_stored(blobs: BlobStore) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"ab", b"cd", b"ef"):
            yield part

    info = await blobs.put_stream(chunks(), max_size=100)
    assert info.path.read_bytes() == b"abcdef"


async def test_same_bytes_are_stored_once(blobs: BlobStore) -> None:
    first = await put(blobs, PROGRAM)
    second = await put(blobs, PROGRAM[:3], PROGRAM[3:])
    assert first == second
    assert files_in(blobs.root) == [sha(PROGRAM)]


async def test_oversized_upload_leaves_nothing_behind(blobs: BlobStore) -> None:
    read: list[int] = []

    def chunks() -> Iterator[bytes]:
        for n in range(10):
            read.append(n)
            yield b"x" * 100

    with pytest.raises(TooLarge, match="limit"):
        await blobs.put_stream(chunks(), max_size=250)
    assert files_in(blobs.root) == []
    assert read == [0, 1, 2]


async def test_upload_of_exactly_max_size_is_accepted(blobs: BlobStore) -> None:
    info = await put(blobs, b"x" * 100, b"y" * 50, max_size=150)
    assert info.size == 150


async def test_empty_upload_is_refused(blobs: BlobStore) -> None:
    with pytest.raises(InvalidInput, match="the upload is empty"):
        await put(blobs, b"", b"")
    assert files_in(blobs.root) == []


async def test_sha256_mismatch_keeps_nothing(blobs: BlobStore) -> None:
    with pytest.raises(InvalidInput, match="expected"):
        await put(blobs, PROGRAM, expected_sha256=sha(b"something else"))
    assert files_in(blobs.root) == []


async def test_matching_expected_sha256_is_accepted_in_any_case(blobs: BlobStore) -> None:
    info = await put(blobs, PROGRAM, expected_sha256=sha(PROGRAM).upper())
    assert info.sha256 == sha(PROGRAM)


async def test_malformed_expected_sha256_is_refused_before_reading(blobs: BlobStore) -> None:
    with pytest.raises(InvalidInput, match="sha256"):
        await put(blobs, PROGRAM, expected_sha256="not-a-hash")
    assert files_in(blobs.root) == []


async def test_failing_stream_leaves_nothing_behind(blobs: BlobStore) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"partial"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await blobs.put_stream(chunks(), max_size=100)
    assert files_in(blobs.root) == []


def test_put_file_copies_a_file(blobs: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "server"
    source.write_bytes(PROGRAM * 1000)
    info = blobs.put_file(source, max_size=10**6)
    assert info.path.read_bytes() == PROGRAM * 1000
    assert blobs.exists(info.sha256)


def test_put_file_over_the_limit_leaves_nothing_behind(blobs: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "server"
    source.write_bytes(b"x" * 2000)
    with pytest.raises(TooLarge):
        blobs.put_file(source, max_size=1999)
    assert files_in(blobs.root) == []


async def test_remove_and_exists(blobs: BlobStore) -> None:
    info = await put(blobs, PROGRAM)
    assert blobs.exists(info.sha256)
    assert blobs.remove(info.sha256) is True
    assert not blobs.exists(info.sha256)
    assert blobs.remove(info.sha256) is False


@pytest.mark.parametrize("name", ["../../etc/passwd", "abc", "A" * 64, ""])
def test_path_refuses_a_string_that_is_not_a_sha256(blobs: BlobStore, name: str) -> None:
    with pytest.raises(InvalidInput, match="sha256"):
        blobs.path(name)


async def test_gc_removes_unkept_blobs_and_stale_uploads_only(blobs: BlobStore) -> None:
    kept = await put(blobs, b"keep me")
    gone = await put(blobs, b"remove me!")
    stale = blobs.root / ".upload-stale"
    stale.write_bytes(b"12345")
    old = time.time() - STALE_TEMP_S - 60
    os.utime(stale, (old, old))
    fresh = blobs.root / ".upload-in-progress"
    fresh.write_bytes(b"123")
    stranger = blobs.root / "README"
    stranger.write_bytes(b"not ours")

    assert blobs.gc({kept.sha256}) == (2, gone.size + 5)
    assert files_in(blobs.root) == sorted([kept.sha256, fresh.name, stranger.name])


# content checks


def make_elf(*, e_type: int = 2, e_machine: int = 62, little: bool = True) -> bytes:
    order: Literal["little", "big"] = "little" if little else "big"
    head = b"\x7fELF" + bytes([2, 1 if little else 2, 1]) + bytes(9)
    return head + e_type.to_bytes(2, order) + e_machine.to_bytes(2, order) + bytes(44)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (make_elf(), "elf"),
        (PROGRAM, "script"),
        (gzip.compress(b"x"), "gzip"),
        (b"PK\x03\x04zip", None),
        (b"", None),
    ],
)
def test_sniff_kind_recognises_elf_scripts_and_gzip(
    tmp_path: Path, data: bytes, kind: str | None
) -> None:
    path = tmp_path / "upload"
    path.write_bytes(data)
    assert sniff_kind(path) == kind


def test_the_running_python_is_accepted_as_a_program_for_this_machine() -> None:
    head = read_head(Path(sys.executable).resolve())
    check_executable_content(head, bundle=False, machine=platform.machine())


@pytest.mark.parametrize("head", [make_elf(), make_elf(e_type=3), PROGRAM, b"#! /usr/bin/env node"])
def test_programs_and_scripts_are_accepted(head: bytes) -> None:
    check_executable_content(head, bundle=False, machine="x86_64")


def test_program_that_is_neither_elf_nor_script_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"neither an ELF binary nor a script.*pass --cmd"):
        check_executable_content(b"PK\x03\x04 a zip file", bundle=False)


def test_gzip_uploaded_as_a_program_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidInput, match="--cmd"):
        check_executable_content(gzip.compress(b"x"), bundle=False)


@pytest.mark.parametrize("head", [make_elf(), PROGRAM, b"plain text"])
def test_bundle_that_is_not_gzip_is_refused(head: bytes) -> None:
    with pytest.raises(InvalidInput, match=r"not a \.tar\.gz bundle"):
        check_executable_content(head, bundle=True)


def test_gzip_bundle_is_accepted() -> None:
    check_executable_content(gzip.compress(b"x"), bundle=True)


def test_elf_for_another_machine_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"aarch64 \(arm64\).*this server is x86_64"):
        check_executable_content(make_elf(e_machine=183), bundle=False, machine="x86_64")
    check_executable_content(make_elf(e_machine=183), bundle=False, machine="aarch64")
    check_executable_content(make_elf(e_machine=183, little=False), bundle=False)


def test_elf_object_file_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not a program"):
        check_executable_content(make_elf(e_type=1), bundle=False)


def test_truncated_elf_is_refused() -> None:
    with pytest.raises(InvalidInput, match="cut short"):
        check_executable_content(b"\x7fELF\x02\x01", bundle=False)


def test_script_with_crlf_shebang_is_refused() -> None:
    with pytest.raises(InvalidInput, match="CRLF"):
        check_executable_content(b"#!/bin/sh\r\necho hi\r\n", bundle=False)


def test_shebang_without_interpreter_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no interpreter"):
        check_executable_content(b"#!  \necho hi\n", bundle=False)


def test_empty_head_is_refused() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        check_executable_content(b"", bundle=False)


# bundles

Entry = tuple[tarfile.TarInfo, bytes | None]


def file_entry(name: str, data: bytes, mode: int = 0o644) -> Entry:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def special_entry(name: str, kind: bytes, linkname: str = "") -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info, None


def make_tgz(path: Path, entries: list[Entry]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    path.write_bytes(buffer.getvalue())
    return path


async def stored_bundle(blobs: BlobStore, tmp_path: Path, entries: list[Entry]) -> str:
    archive = make_tgz(tmp_path / "bundle.tar.gz", entries)
    return (await blobs.put_stream([archive.read_bytes()], max_size=10**7)).sha256


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return bundles_dir(Settings(root=tmp_path))


GOOD = [
    special_entry("bin", tarfile.DIRTYPE),
    file_entry("bin/server", PROGRAM, 0o755),
    file_entry("static/index.html", b"<h1>hi</h1>"),
    special_entry("current", tarfile.SYMTYPE, "bin/server"),
    special_entry("static/up", tarfile.SYMTYPE, "../bin"),
]


async def test_bundle_is_unpacked_read_only(blobs: BlobStore, tmp_path: Path, dest: Path) -> None:
    digest = await stored_bundle(blobs, tmp_path, GOOD)
    root = blobs.unpack_bundle(digest, dest)
    assert root == dest / digest
    assert (root / "bin/server").read_bytes() == PROGRAM
    assert (root / "static/index.html").read_bytes() == b"<h1>hi</h1>"
    assert (root / "current").resolve() == (root / "bin/server").resolve()
    assert stat.S_IMODE((root / "bin/server").stat().st_mode) == 0o555
    assert stat.S_IMODE((root / "static/index.html").stat().st_mode) == 0o444
    for directory in (root, root / "bin", root / "static"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o555
    assert files_in(dest) == [digest]


async def test_unpacking_twice_returns_the_same_directory(
    blobs: BlobStore, tmp_path: Path, dest: Path
) -> None:
    digest = await stored_bundle(blobs, tmp_path, GOOD)
    first = blobs.unpack_bundle(digest, dest)
    inode = first.stat().st_ino
    second = blobs.unpack_bundle(digest, dest)
    assert second == first
    assert second.stat().st_ino == inode
    assert files_in(dest) == [digest]
    # An unpacked bundle is used as it is: the archive is not even read again.
    assert unpack_bundle(tmp_path / "gone.tar.gz", digest, dest) == first


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        (file_entry("../evil", b"x"), r"'\.\.'"),
        (file_entry("app/../../evil", b"x"), r"'\.\.'"),
        (file_entry("/etc/evil", b"x"), "absolute path"),
        (special_entry("dev/null", tarfile.CHRTYPE), "device"),
        (special_entry("dev/sda", tarfile.BLKTYPE), "device"),
        (special_entry("pipe", tarfile.FIFOTYPE), "pipe"),
        (special_entry("passwd", tarfile.SYMTYPE, "/etc/passwd"), "outside the bundle"),
        (special_entry("a/passwd", tarfile.SYMTYPE, "../../etc/passwd"), "outside the bundle"),
        (special_entry("a/b", tarfile.SYMTYPE, "x/../../.."), "outside the bundle"),
        (special_entry("hard", tarfile.LNKTYPE, "../outside"), "outside the bundle"),
        (special_entry("hard", tarfile.LNKTYPE, "/etc/shadow"), "outside the bundle"),
    ],
)
async def test_unsafe_bundle_is_refused_and_leaves_nothing(
    blobs: BlobStore, tmp_path: Path, dest: Path, entry: Entry, match: str
) -> None:
    digest = await stored_bundle(blobs, tmp_path, [file_entry("ok", b"fine"), entry])
    with pytest.raises(InvalidInput, match=match):
        blobs.unpack_bundle(digest, dest)
    assert files_in(dest) == []
    assert not (tmp_path / "evil").exists()


async def test_bundle_with_dotdot_path_is_refused(
    blobs: BlobStore, tmp_path: Path, dest: Path
) -> None:
    digest = await stored_bundle(blobs, tmp_path, [file_entry("../../escaped", b"x")])
    with pytest.raises(InvalidInput, match=r"\.\."):
        blobs.unpack_bundle(digest, dest)
    assert files_in(dest) == []
    assert not (tmp_path / "escaped").exists()
    assert not (dest.parent / "escaped").exists()


async def test_link_escaping_through_another_link_is_refused_by_the_data_filter(
    blobs: BlobStore, tmp_path: Path, dest: Path
) -> None:
    # "link/.." looks like it stays inside, but "link" is ".", so it points at the parent:
    # only resolving links, as tarfile's data filter does, catches it.
    entries = [
        special_entry("link", tarfile.SYMTYPE, "."),
        special_entry("link2", tarfile.SYMTYPE, "link/.."),
    ]
    digest = await stored_bundle(blobs, tmp_path, entries)
    with pytest.raises(InvalidInput, match="cannot be unpacked safely"):
        blobs.unpack_bundle(digest, dest)
    assert files_in(dest) == []


@pytest.mark.parametrize(
    "data", [b"this is not gzip at all", gzip.compress(b"not a tar archive" * 10)]
)
def test_damaged_bundle_is_refused(tmp_path: Path, dest: Path, data: bytes) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    info = blobs.put_file(_write(tmp_path / "upload", data), max_size=10**6)
    with pytest.raises(InvalidInput, match=r"not a valid \.tar\.gz"):
        blobs.unpack_bundle(info.sha256, dest)
    assert files_in(dest) == []


async def test_truncated_bundle_is_refused(blobs: BlobStore, tmp_path: Path, dest: Path) -> None:
    archive = make_tgz(tmp_path / "bundle.tar.gz", [file_entry("big", os.urandom(50_000))])
    data = archive.read_bytes()
    info = await blobs.put_stream([data[: len(data) // 2]], max_size=10**6)
    with pytest.raises(InvalidInput, match=r"not a valid \.tar\.gz"):
        blobs.unpack_bundle(info.sha256, dest)
    assert files_in(dest) == []


async def test_empty_bundle_is_refused(blobs: BlobStore, tmp_path: Path, dest: Path) -> None:
    digest = await stored_bundle(blobs, tmp_path, [])
    with pytest.raises(InvalidInput, match="empty"):
        blobs.unpack_bundle(digest, dest)


async def test_bundle_over_the_unpacked_limit_is_too_large(
    blobs: BlobStore, tmp_path: Path, dest: Path
) -> None:
    digest = await stored_bundle(
        blobs, tmp_path, [file_entry("a", b"x" * 600), file_entry("b", b"y" * 600)]
    )
    with pytest.raises(TooLarge):
        unpack_bundle(blobs.path(digest), digest, dest, max_unpacked=1000)
    assert files_in(dest) == []


def test_missing_blob_cannot_be_unpacked(blobs: BlobStore, dest: Path) -> None:
    with pytest.raises(NotFound, match="upload it again"):
        blobs.unpack_bundle("0" * 64, dest)


async def test_gc_bundles_removes_unpacked_bundles_not_kept(
    blobs: BlobStore, tmp_path: Path, dest: Path
) -> None:
    one = await stored_bundle(blobs, tmp_path, GOOD)
    two = await stored_bundle(blobs, tmp_path, [file_entry("only", b"12345")])
    blobs.unpack_bundle(one, dest)
    blobs.unpack_bundle(two, dest)
    assert gc_bundles(dest, {one}) == (1, 5)
    assert files_in(dest) == [one]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
