"""Restore bindrop's own database from a server backup, on the server (a care unit runs it).

Nothing is touched until the backup has proven itself: its ``bindrop.tar.gz`` part must match
its sha256, extract cleanly, pass ``integrity_check`` and come from a schema this bindrop
knows. Then, as an import does (``bindrop.moving.importer``): this server's tokens are copied
into the restored database (so the token in hand keeps working), the hub is stopped (apps
keep running), the database is swapped in, and the hub starts again and re-attaches to the
running apps. Only where the hub is ``bindrop.service``: a hub run otherwise cannot be
stopped from here, and its database is never swapped under it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bindrop.care.config import CareSettings
from bindrop.care.manifest import BINDROP_PART, parse_backup_id
from bindrop.care.restore import check_part, fetched
from bindrop.errors import Conflict, DamagedBackup, InvalidInput
from bindrop.moving.importer import HubControl
from bindrop.moving.places import HUB_UNIT
from bindrop.settings import Settings
from bindrop.store.migrations import MIGRATIONS

DATABASE = "bindrop.db"


def prepare(settings: Settings, care: CareSettings, backup_id: str,
            log: Callable[[str], None]) -> Path:
    """Check the backup and extract its database into a staging folder; returns the file."""
    _, scope = parse_backup_id(backup_id)
    if scope is not None:
        raise InvalidInput(f"backup {backup_id} is of app {scope} and holds no database of "
                           "bindrop; restore one of the server (`bindrop backup list`)")
    staging = settings.state_dir / ".restore-database"
    shutil.rmtree(staging, ignore_errors=True)
    with fetched(care, backup_id) as (manifest, folder):
        part = next((p for p in manifest.parts if p.name == BINDROP_PART), None)
        if part is None:
            raise InvalidInput(f"backup {backup_id} holds no database of bindrop")
        log(f"checking {backup_id}'s database")
        problems = check_part(manifest, folder, part, staging)
    database = staging / DATABASE
    if not problems and not database.is_file():
        problems = [f"{BINDROP_PART} holds no {DATABASE}"]
    if not problems:
        problems = schema_problems(database)
    if problems:
        shutil.rmtree(staging, ignore_errors=True)
        raise DamagedBackup(f"backup {backup_id} cannot be restored, nothing was changed: "
                            + "; ".join(problems))
    return database


def schema_problems(db: Path) -> list[str]:
    known = {m.name for m in MIGRATIONS}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        applied = {str(r[0]) for r in conn.execute("SELECT name FROM migrations")}
    except sqlite3.Error as exc:
        return [f"{DATABASE} is not bindrop's database ({exc})"]
    finally:
        conn.close()
    newer = sorted(applied - known)
    return [f"the database comes from a newer bindrop (schema {', '.join(newer)})"] if newer \
        else []


def keep_tokens(current: Path, restored: Path) -> None:
    """Copy this server's tokens into the restored database (its own of a name win)."""
    if not current.is_file():
        return
    conn = sqlite3.connect(restored)
    try:
        conn.execute("ATTACH DATABASE ? AS here", (f"file:{current}?mode=ro",))
        columns = ", ".join(str(r[1]) for r in conn.execute("PRAGMA main.table_info(tokens)"))
        conn.execute(f"INSERT OR IGNORE INTO main.tokens ({columns}) "
                     f"SELECT {columns} FROM here.tokens")
        conn.commit()
    finally:
        conn.close()


def restore_database(settings: Settings, care: CareSettings, backup_id: str,
                     hub: HubControl, log: Callable[[str], None]) -> dict[str, Any]:
    database = prepare(settings, care, backup_id, log)
    try:
        keep_tokens(settings.db_path, database)
        log(f"stopping {HUB_UNIT} (apps keep running)")
        if not hub.stop():
            raise Conflict(f"the hub here is not {HUB_UNIT} (or not running): its database "
                           "is not swapped under it; nothing was changed")
        try:
            for side in ("-wal", "-shm"):
                Path(f"{settings.db_path}{side}").unlink(missing_ok=True)
            os.replace(database, settings.db_path)
            log(f"database restored from {backup_id}")
        finally:
            log(f"starting {HUB_UNIT}")
            hub.start()
    finally:
        shutil.rmtree(database.parent, ignore_errors=True)
    return {"backup": backup_id, "restored": True}
