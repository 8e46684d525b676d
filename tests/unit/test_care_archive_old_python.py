"""Backups extract on a Python without tarfile's extraction filters (Debian 12's 3.11.2,
what `bindrop server setup` installs bindrop on): found by the #16 restore over SSH."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest

from bindrop.care.archive import extract_archive
from bindrop.errors import InvalidInput


def archive_of(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def member(name: str, mode: int = 0o644, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


@pytest.fixture
def no_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(tarfile, "data_filter")


@pytest.mark.usefixtures("no_filters")
def test_without_filters_files_come_out_with_their_data_and_no_setuid_bit(
    tmp_path: Path,
) -> None:
    archive = archive_of(tmp_path / "a.tar.gz", [member("db/app.db", 0o4755, b"rows")])
    extract_archive(archive, tmp_path / "out")
    out = tmp_path / "out" / "db" / "app.db"
    assert out.read_bytes() == b"rows"
    assert not out.stat().st_mode & stat.S_ISUID


@pytest.mark.usefixtures("no_filters")
def test_without_filters_a_member_climbing_out_is_still_refused(tmp_path: Path) -> None:
    archive = archive_of(tmp_path / "a.tar.gz", [member("../escape")])
    with pytest.raises(InvalidInput):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "escape").exists()
