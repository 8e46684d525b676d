"""The SQLite connection bindrop opens, and the one way it writes.

SQLite holds desired config and history only, never run-state. The hub is the only writer:
every write goes through ``write_transaction`` on the hub's one connection, so there is no
second writer to race. Other processes (``bindrop backup run``) may read the file at any time,
which WAL allows without blocking the writer.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlite_utils import Database

# How long a statement waits for another connection's lock (a backup reading, a second
# process starting up) before it fails with "database is locked".
BUSY_TIMEOUT_MS = 5000


def connect(path: Path | str) -> Database:
    """Open (creating it, mode 0600, if missing) the SQLite file at ``path``.

    The connection runs in WAL mode with foreign keys enforced and a busy timeout, and in
    driver autocommit mode: nothing opens a transaction behind the caller's back, so a write
    outside ``write_transaction`` commits at once. The file is private to its owner because it
    holds environment values. Plain synchronous use from one thread; does not migrate.
    """
    path = Path(path)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    db = Database(path, execute_plugins=False)
    db.conn.isolation_level = None
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # PRAGMA foreign_keys is per connection and ignored inside a transaction.
    db.execute("PRAGMA foreign_keys = ON")
    db.enable_wal()
    # In WAL mode NORMAL stays consistent after a crash and only a power loss may drop the
    # last commits; FULL's fsync per commit stalled the hub's event loop (bench/hub.py).
    db.execute("PRAGMA synchronous = NORMAL")
    return db


@contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """Run the block in one ``BEGIN IMMEDIATE`` transaction: all of it is written or none.

    IMMEDIATE takes the write lock up front, so a transaction that reads and then writes
    cannot fail half-way with "database is locked" when another connection wrote meanwhile
    (a deferred transaction cannot wait for that lock; it can only fail). Any exception rolls
    back and propagates. Not re-entrant.
    """
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    try:
        db.conn.execute("COMMIT")
    except sqlite3.Error:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
