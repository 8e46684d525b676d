"""System apps belong to the server they run on.

A bundle or a backup comes from another server (or from this one before it died): its
database names that server's system apps (the dashboard), whose releases are launchers
written for *that* server (its Python, its control-API port). Carried over, they fail to
start here (exit 126) after a restart or a reboot. So before an imported database is put in
place, its system apps are dropped from it and this server's own system apps (their rows in
this server's database, whose releases were written by this very bindrop) are put in instead.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

#: Tables whose rows belong to one app, and the column naming it. Events are history: the
#: bundle's own events of its system apps are dropped, this server's are not copied.
APP_TABLES = (("releases", "app"), ("hosts", "app"), ("env", "app"), ("cron_jobs", "app"),
              ("events", "app"), ("apps", "name"))  # apps last: the others ask it
#: Copied from this server, in an order the foreign keys accept (releases before the apps
#: row that names its current release would need them; both are checked only at commit).
COPIED = ("releases", "apps", "hosts", "env", "cron_jobs")


@dataclass(frozen=True)
class OwnSystemApps:
    """What ``keep_own_system_apps`` did."""

    #: System apps of the bundle's server, dropped from the imported database.
    dropped: tuple[str, ...]
    #: This server's own system apps, kept (re-created by the hub from this server's rows).
    kept: tuple[str, ...]


def keep_own_system_apps(current: Path, imported: Path) -> OwnSystemApps:
    """Replace the system apps of the database file ``imported`` by those of ``current``
    (this server's database; none when it does not exist). Writes ``imported`` only."""
    conn = sqlite3.connect(imported, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        dropped = tuple(r[0] for r in conn.execute(
            "SELECT name FROM apps WHERE system = 1 ORDER BY name"))
        for table, column in APP_TABLES:
            if table in tables:
                conn.execute(f"DELETE FROM {table} WHERE {column} IN "
                             "(SELECT name FROM apps WHERE system = 1)"
                             if table != "apps" else "DELETE FROM apps WHERE system = 1")
        kept: tuple[str, ...] = ()
        if current.is_file():
            conn.execute("ATTACH DATABASE ? AS here", (f"file:{current}?mode=ro",))
            here = {r[0] for r in conn.execute(
                "SELECT name FROM here.sqlite_master WHERE type='table'")}
            if "apps" in here:
                kept = tuple(r[0] for r in conn.execute(
                    "SELECT name FROM here.apps WHERE system = 1 ORDER BY name"))
            for table in COPIED if kept else ():
                if table not in here or table not in tables:
                    continue
                column = dict(APP_TABLES)[table]
                theirs = {r[1] for r in conn.execute(f"PRAGMA here.table_info({table})")}
                columns = ", ".join(r[1] for r in conn.execute(f"PRAGMA main.table_info({table})")
                                    if r[1] in theirs)
                # OR IGNORE: a host an imported user app holds stays that app's.
                conn.execute(f"INSERT OR IGNORE INTO main.{table} ({columns}) "
                             f"SELECT {columns} FROM here.{table} WHERE {column} IN "
                             "(SELECT name FROM here.apps WHERE system = 1)")
        conn.execute("COMMIT")
        if current.is_file():
            conn.execute("DETACH DATABASE here")
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return OwnSystemApps(dropped, kept)
