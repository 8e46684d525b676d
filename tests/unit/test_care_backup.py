"""Backups on disk: snapshot, manifest, list, verify, restore, refusals, retention after a run."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bindrop.care.backup import run_backup
from bindrop.care.config import CareSettings
from bindrop.care.local import LocalBackups
from bindrop.care.manifest import MANIFEST, parse_manifest
from bindrop.care.restore import list_backups, prepare_restore, swap_in, verify_backup
from bindrop.errors import DamagedBackup, InvalidInput
from bindrop.settings import Settings
from bindrop.store import Store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(root=tmp_path / "root")
    Store.open(s).close()
    return s


@pytest.fixture
def care(tmp_path: Path) -> CareSettings:
    return CareSettings(backup_dir=tmp_path / "backups", apps_data_dir=tmp_path / "apps")


def make_app_data(care: CareSettings, app: str, rows: list[str]) -> Path:
    data = care.app_data_dir(app)
    (data / "uploads").mkdir(parents=True)
    (data / "uploads" / "a.txt").write_text(f"file of {app}")
    conn = sqlite3.connect(data / "app.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [(r,) for r in rows])
    conn.close()
    return data


def rows(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT v FROM t ORDER BY rowid")]
    finally:
        conn.close()


def test_server_backup_holds_bindrop_db_and_every_app_with_a_manifest(
    settings: Settings, care: CareSettings
) -> None:
    make_app_data(care, "blog", ["a", "b"])
    make_app_data(care, "shop", ["c"])
    result = run_backup(settings, care)
    folder = care.backup_dir / result.manifest.id
    manifest = parse_manifest((folder / MANIFEST).read_text(), result.manifest.id)
    assert [p.name for p in manifest.parts] == ["bindrop.tar.gz", "server.tar.gz",
                                                 "app-blog.tar.gz", "app-shop.tar.gz"]
    assert manifest.part_for("blog") is not None
    assert manifest.part_for("blog").databases == ("app.sqlite3",)  # type: ignore[union-attr]
    assert all(len(p.sha256) == 64 and p.size > 0 for p in manifest.parts)
    assert verify_backup(care, result.manifest.id) == []
    assert [b.manifest.id for b in list_backups(care, "shop")] == [result.manifest.id]


def test_restore_brings_back_the_exact_rows_and_files(
    settings: Settings, care: CareSettings
) -> None:
    data = make_app_data(care, "blog", ["one", "two", "three"])
    backup_id = run_backup(settings, care, "blog").manifest.id
    conn = sqlite3.connect(data / "app.sqlite3", isolation_level=None)
    conn.execute("DELETE FROM t")
    conn.execute("INSERT INTO t VALUES ('after')")
    conn.close()
    (data / "uploads" / "a.txt").write_text("changed")
    prepared = prepare_restore(care, "blog", backup_id)
    assert swap_in(prepared) == []
    assert rows(data / "app.sqlite3") == ["one", "two", "three"]
    assert (data / "uploads" / "a.txt").read_text() == "file of blog"
    assert not list(care.apps_data_dir.glob(".*"))


def test_restore_of_another_apps_backup_is_refused(settings: Settings,
                                                   care: CareSettings) -> None:
    make_app_data(care, "blog", ["x"])
    make_app_data(care, "shop", ["y"])
    backup_id = run_backup(settings, care, "shop").manifest.id
    with pytest.raises(InvalidInput, match="of app shop, not blog"):
        prepare_restore(care, "blog", backup_id)
    assert rows(care.app_data_dir("blog") / "app.sqlite3") == ["x"]


def test_a_damaged_backup_is_refused_before_anything_is_touched(
    settings: Settings, care: CareSettings
) -> None:
    make_app_data(care, "blog", ["x"])
    backup_id = run_backup(settings, care, "blog").manifest.id
    part = care.backup_dir / backup_id / "app-blog.tar.gz"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    assert any("sha256" in p for p in verify_backup(care, backup_id))
    with pytest.raises(DamagedBackup, match="sha256"):
        prepare_restore(care, "blog", backup_id)
    assert rows(care.app_data_dir("blog") / "app.sqlite3") == ["x"]
    assert not (care.apps_data_dir / ".restore-blog").exists()


def test_a_manifest_that_lies_about_a_database_is_refused(
    settings: Settings, care: CareSettings
) -> None:
    make_app_data(care, "blog", ["x"])
    backup_id = run_backup(settings, care, "blog").manifest.id
    path = care.backup_dir / backup_id / MANIFEST
    raw = json.loads(path.read_text())
    raw["parts"][0]["databases"] = ["uploads/a.txt"]
    path.write_text(json.dumps(raw))
    with pytest.raises(DamagedBackup, match="not an SQLite database"):
        prepare_restore(care, "blog", backup_id)


def test_a_failed_run_leaves_no_complete_looking_backup(
    settings: Settings, care: CareSettings
) -> None:
    make_app_data(care, "blog", ["x"])
    # A file that looks like SQLite but is not: the snapshot of it fails half-way.
    (care.app_data_dir("blog") / "broken.db").write_bytes(b"SQLite format 3\x00" + b"\0" * 200)
    with pytest.raises(Exception, match=r"backup .* failed"):
        run_backup(settings, care)
    assert LocalBackups(care.backup_dir).list() == []
    assert [p.name for p in care.backup_dir.iterdir()] == [".lock"]


def test_retention_after_a_run_deletes_the_oldest_of_the_same_scope(
    settings: Settings, care: CareSettings
) -> None:
    care = CareSettings(care.backup_dir, care.apps_data_dir, keep_daily=2, keep_weekly=0)
    make_app_data(care, "blog", ["x"])
    start = datetime(2026, 11, 2, 3, tzinfo=UTC)
    app_backup = run_backup(settings, care, "blog", now=lambda: start).manifest.id
    ids = [run_backup(settings, care, now=lambda d=d: start + timedelta(days=d)).manifest.id
           for d in range(4)]
    left = [m.id for m in LocalBackups(care.backup_dir).list()]
    assert left == sorted([app_backup, ids[2], ids[3]])


def test_a_backup_of_an_app_without_data_is_refused(settings: Settings,
                                                    care: CareSettings) -> None:
    from bindrop.errors import NotFound

    with pytest.raises(NotFound, match="no data directory"):
        run_backup(settings, care, "ghost")
    assert not care.backup_dir.exists()
