"""Releases: each upload of an app, numbered per app from 1, and what became of it.

A release's ``status`` is history, not run-state: it records what deploys did
(``pending`` until its first deploy ends, then ``live`` if that deploy made it the serving
release, ``failed`` if not; the former live one becomes ``previous``). Whether its unit runs
right now is systemd's to say.

For kind ``binary`` the blob is the program and ``command`` holds its arguments (possibly
none). For kind ``bundle`` the blob is a ``.tar.gz`` unpacked into a directory, and
``command`` is the program to run (a path relative to the bundle's root, or absolute) and its
arguments; it cannot be empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlite_utils import Database

from bindrop.domain.processes import PROCESSES_MAX, validate_process_name
from bindrop.errors import Conflict, InvalidInput, NotFound
from bindrop.store.apps import require_app
from bindrop.store.connection import write_transaction
from bindrop.store.timestamps import now_text, parse_timestamp

ReleaseKind = Literal["binary", "bundle"]
ReleaseStatus = Literal["pending", "live", "previous", "failed"]

SHA256 = re.compile(r"[0-9a-f]{64}")
CREATED_BY_MAX = 200
REASON_MAX = 4000
COMMAND_MAX_ARGS = 256
DEFAULT_KEEP = 5


@dataclass(frozen=True)
class Release:
    """One release of one app as stored."""

    app: str
    number: int
    sha256: str
    size: int
    kind: ReleaseKind
    command: tuple[str, ...]
    created_by: str
    created_at: datetime
    status: ReleaseStatus
    reason: str | None
    status_changed_at: datetime
    #: process type -> command (as ``command`` is for its kind); None: only ``web``, whose
    #: command is ``command`` (releases before process types, or without any declared).
    processes: Mapping[str, tuple[str, ...]] | None = None
    #: run once by a deploy before any instance of the release starts
    release_command: tuple[str, ...] | None = None

    def process_commands(self) -> dict[str, tuple[str, ...]]:
        """Every process type of the release and its command (``web`` alone by default)."""
        if self.processes is None:
            return {"web": self.command}
        return {name: tuple(cmd) for name, cmd in self.processes.items()}

    @property
    def release_id(self) -> str:
        """The release's token in its unit name: ``bindrop-app-<app>-<release_id>.service``."""
        return str(self.number)


def validate_sha256(sha256: object) -> str:
    """Return ``sha256`` if it is 64 lowercase hex digits; ``InvalidInput`` otherwise. Pure."""
    if not isinstance(sha256, str) or not SHA256.fullmatch(sha256):
        raise InvalidInput(f"{sha256!r} is not a sha256: expected 64 lowercase hex digits")
    return sha256


def validate_command(kind: object, command: object) -> tuple[str, ...]:
    """Return ``command`` as a tuple if it suits ``kind``; ``InvalidInput`` otherwise. Pure."""
    if kind not in get_args(ReleaseKind):
        raise InvalidInput(f"release kind {kind!r} is not valid: use 'binary' or 'bundle'")
    if (
        isinstance(command, str)
        or not isinstance(command, Sequence)
        or not all(isinstance(arg, str) and "\0" not in arg for arg in command)
        or len(command) > COMMAND_MAX_ARGS
    ):
        raise InvalidInput(
            f"command {command!r} is not valid: give a list of at most {COMMAND_MAX_ARGS} "
            "strings without NUL characters"
        )
    if kind == "bundle" and (not command or not command[0].strip()):
        raise InvalidInput(
            "a bundle needs a command: pass --cmd with the program to run inside the bundle, "
            "e.g. --cmd './bin/server --port $PORT'"
        )
    return tuple(command)


def _text(what: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit or "\0" in value:
        raise InvalidInput(f"{what} is not valid: use at most {limit} characters of text")
    return value


def _from_row(row: Mapping[str, Any]) -> Release:
    return Release(
        app=row["app"],
        number=row["number"],
        sha256=row["sha256"],
        size=row["size"],
        kind=row["kind"],
        command=tuple(json.loads(row["command"])),
        created_by=row["created_by"],
        created_at=parse_timestamp(row["created_at"]),
        status=row["status"],
        reason=row["reason"],
        status_changed_at=parse_timestamp(row["status_changed_at"]),
        processes=(None if row.get("processes") is None else
                   {k: tuple(v) for k, v in json.loads(row["processes"]).items()}),
        release_command=(None if row.get("release_command") is None else
                         tuple(json.loads(row["release_command"]))),
    )


def _current_release(db: Database, app: str) -> int | None:
    """Return the app's ``current_release``; ``NotFound`` if there is no such app."""
    require_app(db, app)
    current: int | None = db.execute(
        "SELECT current_release FROM apps WHERE name = ?", [app]
    ).fetchone()[0]
    return current


def add_release(
    db: Database,
    app: str,
    sha256: str,
    size: int,
    kind: ReleaseKind,
    command: Sequence[str],
    created_by: str,
    processes: Mapping[str, Sequence[str]] | None = None,
    release_command: Sequence[str] | None = None,
) -> Release:
    """Record a new ``pending`` release of ``app`` with the next number; return it.

    Numbers are never reused while the app exists, even after old releases are deleted.
    ``NotFound`` for a missing app, ``InvalidInput`` for a bad value; does not write on error.
    A bundle with ``processes`` may have an empty ``command``.
    """
    validate_sha256(sha256)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InvalidInput(f"release size {size!r} is not valid: use a positive number of bytes")
    args = validate_command("binary" if processes and kind == "bundle" else kind, command)
    procs = None
    if processes is not None:
        procs = {validate_process_name(name): validate_command(kind, cmd)
                 for name, cmd in processes.items()}
        if len(procs) > PROCESSES_MAX:  # a Procfile and --process options together
            raise InvalidInput(f"the release declares {len(procs)} processes; at most "
                               f"{PROCESSES_MAX} are allowed")
    release_cmd = None if release_command is None else validate_command(kind, release_command)
    _text("created_by", created_by, CREATED_BY_MAX)
    with write_transaction(db):
        require_app(db, app)
        db.execute("UPDATE apps SET last_release = last_release + 1 WHERE name = ?", [app])
        (number,) = db.execute("SELECT last_release FROM apps WHERE name = ?", [app]).fetchone()
        now = now_text()
        db.execute(
            """
            INSERT INTO releases (app, number, sha256, size, kind, command, created_by,
                                  created_at, status, reason, status_changed_at, processes,
                                  release_command)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL, ?, ?, ?)
            """,
            [app, number, sha256, size, kind, json.dumps(list(args)), created_by, now, now,
             None if procs is None else json.dumps({k: list(v) for k, v in procs.items()}),
             None if release_cmd is None else json.dumps(list(release_cmd))],
        )
    return get_release(db, app, number)


def get_release(db: Database, app: str, number: int) -> Release:
    """Return release ``number`` of ``app``; ``NotFound`` for either missing. Does not write."""
    require_app(db, app)
    rows = list(db.query("SELECT * FROM releases WHERE app = ? AND number = ?", [app, number]))
    if not rows:
        raise NotFound(f"app {app!r} has no release {number!r}")
    return _from_row(rows[0])


def list_releases(db: Database, app: str) -> list[Release]:
    """Return the releases of ``app``, newest first; ``NotFound`` for a missing app."""
    require_app(db, app)
    return [
        _from_row(row)
        for row in db.query("SELECT * FROM releases WHERE app = ? ORDER BY number DESC", [app])
    ]


def set_release_status(
    db: Database, app: str, number: int, status: ReleaseStatus, reason: str | None = None
) -> Release:
    """Set a release's status and reason (``None`` clears it); return the release.

    Marking one ``live`` turns the app's former live release ``previous`` in the same
    transaction, so an app never has two. Does not write on error.
    """
    if status not in get_args(ReleaseStatus):
        raise InvalidInput(
            f"release status {status!r} is not valid: use pending, live, previous or failed"
        )
    if reason is not None:
        _text("reason", reason, REASON_MAX)
    with write_transaction(db):
        get_release(db, app, number)
        now = now_text()
        if status == "live":
            db.execute(
                """
                UPDATE releases SET status = 'previous', status_changed_at = ?
                WHERE app = ? AND status = 'live' AND number != ?
                """,
                [now, app, number],
            )
        db.execute(
            """
            UPDATE releases SET status = ?, reason = ?, status_changed_at = ?
            WHERE app = ? AND number = ?
            """,
            [status, reason, now, app, number],
        )
    return get_release(db, app, number)


def releases_to_collect(db: Database, app: str, keep: int = DEFAULT_KEEP) -> list[Release]:
    """Return the releases of ``app`` that may be deleted, newest first. Does not write.

    Those older than the newest ``keep``, except the live one and the app's
    ``current_release``, which are always kept.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise InvalidInput(f"keep {keep!r} is not valid: use a whole number of releases, 0 or more")
    current = _current_release(db, app)
    return [
        release
        for release in list_releases(db, app)[keep:]
        if release.status != "live" and release.number != current
    ]


def delete_releases(db: Database, app: str, numbers: Iterable[int]) -> set[str]:
    """Delete releases of ``app`` in one transaction; return the blobs no release uses now.

    ``NotFound`` for a release the app does not have, ``Conflict`` for the live release or
    the app's ``current_release``; either way nothing is deleted.
    """
    wanted = sorted(set(numbers))
    with write_transaction(db):
        current = _current_release(db, app)
        used: set[str] = set()
        for number in wanted:
            release = get_release(db, app, number)
            if release.status == "live" or number == current:
                raise Conflict(
                    f"release {number} of app {app!r} is the one that should run; deploy or "
                    "roll back to another release before deleting it"
                )
            used.add(release.sha256)
        db.conn.executemany(
            "DELETE FROM releases WHERE app = ? AND number = ?", [(app, n) for n in wanted]
        )
        return used - referenced_blobs(db)


def referenced_blobs(db: Database) -> set[str]:
    """Return the sha256 of every blob some release of some app uses. Does not write."""
    return {row[0] for row in db.execute("SELECT DISTINCT sha256 FROM releases")}
