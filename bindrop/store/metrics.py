"""Traffic and resource history per app, one row a minute (history, never run-state).

The hub writes a minute once it is over and prunes rows older than its retention; readers
get rows as plain dicts (the hub turns them into ``Point``s). Counts are kept as the proxies
reported them, so any step of a minute or more can be rebuilt exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlite_utils import Database

from bindrop.store.connection import write_transaction

_COLUMNS = ("app", "t", "requests", "classes", "gateway", "bytes_in", "bytes_out",
            "latency_sum", "latency", "memory", "cpu_ns", "tasks")
_JSON = ("classes", "gateway", "latency")


def write_minutes(db: Database, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert (or replace) minute rows, each with every column of ``metrics_minutes``."""
    if not rows:
        return
    placeholders = ", ".join("?" for _ in _COLUMNS)
    with write_transaction(db):
        for row in rows:
            db.execute(
                f"INSERT OR REPLACE INTO metrics_minutes ({', '.join(_COLUMNS)}) "
                f"VALUES ({placeholders})",
                [json.dumps(row[c]) if c in _JSON else row[c] for c in _COLUMNS])


def read_minutes(db: Database, app: str, since: int, until: int) -> list[dict[str, Any]]:
    """Rows of ``app`` with ``since <= t < until``, oldest first. Does not write."""
    rows = []
    for row in db.query("SELECT * FROM metrics_minutes WHERE app = ? AND t >= ? AND t < ? "
                        "ORDER BY t", [app, since, until]):
        for column in _JSON:
            row[column] = json.loads(row[column])
        rows.append(row)
    return rows


def delete_minutes(db: Database, app: str) -> None:
    """Forget an app's history (it was destroyed; a new app of that name starts afresh)."""
    db.execute("DELETE FROM metrics_minutes WHERE app = ?", [app])


def prune_minutes(db: Database, before: int) -> int:
    """Delete rows older than ``before`` (unix seconds); returns how many went."""
    with write_transaction(db):
        cursor = db.execute("DELETE FROM metrics_minutes WHERE t < ?", [before])
    return int(cursor.rowcount)
