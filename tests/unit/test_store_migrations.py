"""The schema: migrations applied in order at start-up, once each, all or nothing."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database

from bindrop.errors import Conflict
from bindrop.settings import Settings
from bindrop.store import AppConfig, Store
from bindrop.store.connection import connect
from bindrop.store.migrations import (
    MIGRATIONS,
    Migration,
    applied_migrations,
    apply_migrations,
)


def schema(db: Database) -> list[tuple[str, str]]:
    return [
        (row["name"], row["sql"])
        for row in db.query(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
        )
    ]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = connect(tmp_path / "bindrop.db")
    yield database
    database.close()


def test_a_new_database_gets_every_migration(tmp_path: Path) -> None:
    with Store.open(Settings(root=tmp_path)) as store:
        assert applied_migrations(store.db) == [m.name for m in MIGRATIONS]
        assert {"apps", "hosts", "releases", "env", "events", "migrations"} <= set(
            store.db.table_names()
        )


def test_applying_migrations_twice_is_a_no_op(db: Database) -> None:
    assert apply_migrations(db) == [m.name for m in MIGRATIONS]
    before = schema(db)
    recorded = list(db.query("SELECT * FROM migrations"))
    changes = db.conn.total_changes

    assert apply_migrations(db) == []
    assert schema(db) == before
    assert list(db.query("SELECT * FROM migrations")) == recorded
    assert db.conn.total_changes == changes


def test_reopening_a_store_keeps_its_data_and_migration_records(tmp_path: Path) -> None:
    settings = Settings(root=tmp_path)
    with Store.open(settings) as store:
        store.create_app(AppConfig("blog", hosts=["blog.example.com"]))
        recorded = list(store.db.query("SELECT * FROM migrations"))
    with Store.open(settings) as store:
        assert store.get_app("blog").hosts == ("blog.example.com",)
        assert list(store.db.query("SELECT * FROM migrations")) == recorded


def test_a_database_at_an_older_migration_upgrades_to_the_latest(tmp_path: Path) -> None:
    path = tmp_path / "bindrop.db"
    db = connect(path)
    try:
        assert apply_migrations(db, MIGRATIONS[:1]) == [MIGRATIONS[0].name]
        assert "env" not in db.table_names()
    finally:
        db.close()
    with Store(path) as store:
        store.create_app(AppConfig("blog"))
        assert applied_migrations(store.db) == [m.name for m in MIGRATIONS]
    db = connect(path)
    try:
        assert apply_migrations(db) == []
    finally:
        db.close()
    with Store(path) as store:
        store.set_env("blog", {"GREETING": "hello"})
        assert store.get_env("blog") == {"GREETING": "hello"}


def test_a_failing_migration_leaves_no_trace(db: Database) -> None:
    def create_then_fail(db: Database) -> None:
        db.execute("CREATE TABLE half (x INTEGER)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        apply_migrations(db, [Migration("0001_half", create_then_fail)])
    assert "half" not in db.table_names()
    assert applied_migrations(db) == []

    def create(db: Database) -> None:
        db.execute("CREATE TABLE half (x INTEGER)")

    assert apply_migrations(db, [Migration("0001_half", create)]) == ["0001_half"]
    assert "half" in db.table_names()


def test_migrations_run_in_the_order_listed(db: Database) -> None:
    ran: list[str] = []

    def step(name: str) -> Migration:
        return Migration(name, lambda _db: ran.append(name))

    steps = [step(name) for name in ("b", "a", "c")]
    apply_migrations(db, steps)
    assert ran == ["b", "a", "c"]
    assert applied_migrations(db) == ["b", "a", "c"]


def test_a_database_from_a_newer_bindrop_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bindrop.db"
    with Store(path) as store:
        store.db.execute(
            "INSERT INTO migrations (name, applied_at) VALUES ('9999_future', 'later')"
        )
    with pytest.raises(Conflict, match="newer bindrop"):
        Store(path)


def test_the_connection_uses_wal_foreign_keys_and_a_busy_timeout(db: Database) -> None:
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_the_database_file_is_private_to_its_owner(tmp_path: Path) -> None:
    with Store.open(Settings(root=tmp_path)) as store:
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
