"""Copying a live SQLite database: one consistent, self-contained file; checks that catch damage."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from bindrop.care.sqlite_copy import (
    copy_database,
    find_sqlite_files,
    integrity_check,
    is_sqlite_file,
)
from bindrop.errors import CopyFailed


def make_db(path: Path, rows: int = 3, *, wal: bool = True) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    if wal:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t (v) VALUES (?)", [(f"row {i}",) for i in range(rows)])
    conn.close()


def rows_of(path: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, v FROM t ORDER BY id").fetchall()
    finally:
        conn.close()


def test_sqlite_file_is_known_by_its_header_not_its_name(tmp_path: Path) -> None:
    make_db(tmp_path / "data.bin")
    (tmp_path / "notes.db").write_text("not a database")
    (tmp_path / "empty.sqlite").write_bytes(b"")
    assert is_sqlite_file(tmp_path / "data.bin")
    assert not is_sqlite_file(tmp_path / "notes.db")
    assert not is_sqlite_file(tmp_path / "empty.sqlite")
    assert not is_sqlite_file(tmp_path / "missing.db")
    assert not is_sqlite_file(tmp_path)


def test_find_lists_nested_databases_sorted_without_side_files_or_symlinks(
    tmp_path: Path,
) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    make_db(tmp_path / "b.db")
    make_db(tmp_path / "sub" / "deeper" / "a.db")
    (tmp_path / "sub" / "readme.txt").write_text("hello")
    (tmp_path / "link.db").symlink_to(tmp_path / "b.db")
    # A reader that keeps the WAL open leaves b.db-wal and b.db-shm beside it.
    keep = sqlite3.connect(tmp_path / "b.db")
    keep.execute("SELECT * FROM t").fetchall()
    try:
        assert find_sqlite_files(tmp_path) == [tmp_path / "b.db",
                                               tmp_path / "sub" / "deeper" / "a.db"]
    finally:
        keep.close()


def test_find_in_a_missing_directory_finds_none(tmp_path: Path) -> None:
    assert find_sqlite_files(tmp_path / "nope") == []


def test_copy_includes_commits_still_in_the_wal_and_is_one_file(tmp_path: Path) -> None:
    src = tmp_path / "app.db"
    make_db(src, rows=5)
    # An open writer with autocheckpoint off keeps its commits in app.db-wal only.
    writer = sqlite3.connect(src, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO t (v) VALUES ('only in the wal')")
    try:
        assert (tmp_path / "app.db-wal").stat().st_size > 0
        dst = tmp_path / "out" / "app.db"
        dst.parent.mkdir()
        copy_database(src, dst)
    finally:
        writer.close()
    assert sorted(p.name for p in dst.parent.iterdir()) == ["app.db"]
    # Header bytes 18/19 are 1 in rollback-journal mode, 2 in WAL mode.
    assert dst.read_bytes()[18:20] == b"\x01\x01"
    assert rows_of(dst)[-1] == (6, "only in the wal")
    assert integrity_check(dst) is None


def test_copy_while_another_thread_writes_is_a_consistent_snapshot(tmp_path: Path) -> None:
    src = tmp_path / "busy.db"
    make_db(src, rows=0)
    stop = threading.Event()

    def write_loop() -> None:
        conn = sqlite3.connect(src, isolation_level=None, timeout=10)
        n = 0
        while not stop.is_set():
            # Two rows per transaction: a torn copy would show an odd count.
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t (v) VALUES (?)", (f"a{n}" * 200,))
            conn.execute("INSERT INTO t (v) VALUES (?)", (f"b{n}" * 200,))
            conn.execute("COMMIT")
            n += 1
        conn.close()

    thread = threading.Thread(target=write_loop)
    thread.start()
    try:
        copies = []
        for i in range(5):
            dst = tmp_path / f"copy{i}.db"
            copy_database(src, dst)
            copies.append(dst)
    finally:
        stop.set()
        thread.join()
    for dst in copies:
        assert integrity_check(dst) is None
        assert len(rows_of(dst)) % 2 == 0


def test_copy_replaces_an_existing_file(tmp_path: Path) -> None:
    make_db(tmp_path / "a.db", rows=2)
    (tmp_path / "out.db").write_text("old")
    copy_database(tmp_path / "a.db", tmp_path / "out.db")
    assert len(rows_of(tmp_path / "out.db")) == 2


def test_a_failed_copy_leaves_nothing_at_the_destination(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"x" * 4096)
    with pytest.raises(CopyFailed, match=r"junk\.db"):
        copy_database(tmp_path / "junk.db", tmp_path / "out.db")
    with pytest.raises(CopyFailed, match=r"missing\.db"):
        copy_database(tmp_path / "missing.db", tmp_path / "out.db")
    assert list(tmp_path.iterdir()) == [tmp_path / "junk.db"]


def test_integrity_check_reports_a_damaged_database(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    make_db(path, rows=300, wal=False)
    data = bytearray(path.read_bytes())
    # Page 2 is the table's root page: overwrite its b-tree header.
    data[4096:4096 + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    problem = integrity_check(path)
    assert problem is not None and problem.startswith("bad.db")


def test_integrity_check_of_a_non_database_says_so(tmp_path: Path) -> None:
    (tmp_path / "x.db").write_text("hello")
    assert integrity_check(tmp_path / "x.db") == "x.db is not an SQLite database"


def test_integrity_check_writes_nothing(tmp_path: Path) -> None:
    make_db(tmp_path / "a.db", wal=False)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert integrity_check(tmp_path / "a.db") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == before
