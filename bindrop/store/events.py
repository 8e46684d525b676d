"""Events: what happened, in order, for people to read (``bindrop events``, the dashboard).

Kinds are past-tense snake_case names (``app_created``, ``deploy_succeeded``,
``deploy_failed``, ``app_gave_up``). Events are history: they name an app but do not depend
on it, and stay when it is deleted. ``data`` holds JSON-serialisable details; never put
environment values or tokens in it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bindrop.domain.names import validate_app_name
from bindrop.errors import InvalidInput
from bindrop.store.timestamps import now_text, parse_timestamp

KIND = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
KIND_MAX = 64
MESSAGE_MAX = 4000
LIST_LIMIT_MAX = 1000


@dataclass(frozen=True)
class Event:
    """One event as stored. ``id`` increases with time and is never reused."""

    id: int
    at: datetime
    kind: str
    app: str | None
    message: str
    data: Mapping[str, Any] | None


def _from_row(row: Mapping[str, Any]) -> Event:
    return Event(
        id=row["id"],
        at=parse_timestamp(row["at"]),
        kind=row["kind"],
        app=row["app"],
        message=row["message"],
        data=json.loads(row["data"]) if row["data"] is not None else None,
    )


def add_event(
    db: Database,
    kind: str,
    app: str | None = None,
    message: str = "",
    data: Mapping[str, Any] | None = None,
) -> Event:
    """Record an event and return it. ``InvalidInput`` (nothing written) for a kind that is
    not snake_case, a bad app name, an over-long message, or data that is not a JSON object.
    The app need not exist (an ``app_deleted`` event outlives it)."""
    if not isinstance(kind, str) or len(kind) > KIND_MAX or not KIND.fullmatch(kind):
        raise InvalidInput(
            f"event kind {kind!r} is not valid: use a past-tense snake_case name such as "
            "deploy_succeeded"
        )
    if app is not None:
        validate_app_name(app)
    if not isinstance(message, str) or len(message) > MESSAGE_MAX:
        raise InvalidInput(f"event message is not valid: use at most {MESSAGE_MAX} characters")
    encoded: str | None = None
    if data is not None:
        if not isinstance(data, Mapping):
            raise InvalidInput("event data must be a JSON object (a mapping)")
        try:
            encoded = json.dumps(dict(data), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise InvalidInput(f"event data cannot be stored as JSON: {e}") from None
    cursor = db.execute(
        "INSERT INTO events (at, kind, app, message, data) VALUES (?, ?, ?, ?, ?)",
        [now_text(), kind, app, message, encoded],
    )
    rows = list(db.query("SELECT * FROM events WHERE id = ?", [cursor.lastrowid]))
    return _from_row(rows[0])


def list_events(
    db: Database, app: str | None = None, after_id: int | None = None, limit: int = 100
) -> list[Event]:
    """Return events oldest first, of one app or of all. Does not write.

    Without ``after_id``: the newest ``limit`` events. With it: the first ``limit`` events
    whose id is greater, so a reader tails the log by passing the last id it saw.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= LIST_LIMIT_MAX:
        raise InvalidInput(f"limit {limit!r} is not valid: use 1-{LIST_LIMIT_MAX}")
    if after_id is not None and (
        isinstance(after_id, bool) or not isinstance(after_id, int) or after_id < 0
    ):
        raise InvalidInput(f"after_id {after_id!r} is not valid: use an event id")
    where: list[str] = []
    params: list[object] = []
    if app is not None:
        validate_app_name(app)
        where.append("app = ?")
        params.append(app)
    if after_id is not None:
        where.append("id > ?")
        params.append(after_id)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    order = "ASC" if after_id is not None else "DESC"
    rows = db.query(f"SELECT * FROM events {clause} ORDER BY id {order} LIMIT ?", [*params, limit])
    events = [_from_row(row) for row in rows]
    return events if after_id is not None else events[::-1]


def last_event_of(db: Database, kinds: Sequence[str]) -> Event | None:
    """The newest event of any of ``kinds``, or None. Does not write."""
    if not kinds:
        return None
    marks = ", ".join("?" for _ in kinds)
    rows = list(db.query(f"SELECT * FROM events WHERE kind IN ({marks}) ORDER BY id DESC "
                         "LIMIT 1", list(kinds)))
    return _from_row(rows[0]) if rows else None
