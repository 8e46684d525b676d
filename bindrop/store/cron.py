"""Apps' scheduled jobs (``bindrop cron``): desired config, like the rest of an app.

A row says "run ``args`` of the app's current release on ``schedule``"; the hub turns it into
a transient timer and recreates that after a reboot. Rows go with their app.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from bindrop.domain.names import validate_app_name
from bindrop.errors import Conflict, InvalidInput, NotFound
from bindrop.store.apps import require_app
from bindrop.store.connection import write_transaction
from bindrop.store.timestamps import now_text
from bindrop.units.cron import validate_job_name

JOBS_PER_APP_MAX = 50
ARGS_MAX = 100


@dataclass(frozen=True)
class CronJob:
    app: str
    name: str
    schedule: str
    args: tuple[str, ...]
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "name": self.name, "schedule": self.schedule,
                "args": list(self.args), "created_at": self.created_at}


def _from_row(row: Mapping[str, Any]) -> CronJob:
    return CronJob(row["app"], row["name"], row["schedule"], tuple(json.loads(row["args"])),
                   row["created_at"])


def validate_args(args: Sequence[str]) -> tuple[str, ...]:
    if (not isinstance(args, (list, tuple)) or len(args) > ARGS_MAX
            or not all(isinstance(a, str) and "\0" not in a for a in args)):
        raise InvalidInput(f"args must be a list of at most {ARGS_MAX} strings without NUL")
    return tuple(args)


def add_cron_job(db: Database, app: str, name: str, schedule: str,
                 args: Sequence[str]) -> CronJob:
    """Record a job; ``Conflict`` if the app has one of that name. ``schedule`` is checked by
    the caller (systemd's parser)."""
    validate_job_name(name)
    args = validate_args(args)
    if not isinstance(schedule, str) or not schedule.strip():
        raise InvalidInput("a job needs a schedule such as daily")
    with write_transaction(db):
        require_app(db, app)
        count = db.execute("SELECT count(*) FROM cron_jobs WHERE app = ?", [app]).fetchone()[0]
        if count >= JOBS_PER_APP_MAX:
            raise Conflict(f"{app} has {count} jobs already, the most an app may have")
        if db.execute("SELECT 1 FROM cron_jobs WHERE app = ? AND name = ?",
                      [app, name]).fetchone():
            raise Conflict(f"{app} has a job named {name} already; remove it first with "
                           f"`bindrop cron rm {app} {name}`")
        db.execute("INSERT INTO cron_jobs (app, name, schedule, args, created_at) "
                   "VALUES (?, ?, ?, ?, ?)", [app, name, schedule, json.dumps(list(args)),
                                              now_text()])
    return get_cron_job(db, app, name)


def get_cron_job(db: Database, app: str, name: str) -> CronJob:
    rows = list(db.query("SELECT * FROM cron_jobs WHERE app = ? AND name = ?", [app, name]))
    if not rows:
        raise NotFound(f"{app} has no job named {name}; `bindrop cron list {app}` shows them")
    return _from_row(rows[0])


def list_cron_jobs(db: Database, app: str | None = None) -> list[CronJob]:
    """Jobs of one app, or of all, by app and name. Does not write."""
    if app is None:
        rows = db.query("SELECT * FROM cron_jobs ORDER BY app, name")
    else:
        validate_app_name(app)
        rows = db.query("SELECT * FROM cron_jobs WHERE app = ? ORDER BY name", [app])
    return [_from_row(r) for r in rows]


def remove_cron_job(db: Database, app: str, name: str) -> CronJob:
    job = get_cron_job(db, app, name)
    db.execute("DELETE FROM cron_jobs WHERE app = ? AND name = ?", [app, name])
    return job
