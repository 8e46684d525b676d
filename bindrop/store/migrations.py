"""The schema, as an ordered list of migrations applied at start-up.

Each migration is a function of a ``sqlite_utils.Database``, named once and never edited after
it has shipped: a change to the schema is a new function appended to ``MIGRATIONS``. The
``migrations`` table records the names applied, so start-up applies only what is missing and
opening an up-to-date database writes nothing.

A migration runs in one transaction with the record of it, so a failure leaves no half-applied
schema behind. Foreign keys stay enforced inside it (SQLite ignores ``PRAGMA foreign_keys``
inside a transaction): a migration that rebuilds a referenced table must copy rows in an
order the constraints accept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlite_utils import Database

from bindrop.errors import Conflict
from bindrop.store.connection import write_transaction
from bindrop.store.timestamps import now_text


@dataclass(frozen=True)
class Migration:
    """One step of the schema: a stable ``name`` and the function that applies it."""

    name: str
    apply: Callable[[Database], None]


def _create_apps_and_releases(db: Database) -> None:
    # apps -> releases (current_release) and releases -> apps (app) reference each other, so
    # they are created together. current_release is desired config: the build to run after a
    # reboot. Release *status* is history (what the last deploys did), not run-state.
    db.execute(
        """
        CREATE TABLE apps (
            name TEXT PRIMARY KEY,
            health_path TEXT,
            health_timeout_s REAL NOT NULL,
            memory_max INTEGER,
            cpu_quota INTEGER,
            tasks_max INTEGER,
            on_demand INTEGER NOT NULL CHECK (on_demand IN (0, 1)),
            idle_timeout_s REAL NOT NULL,
            no_overlap INTEGER NOT NULL CHECK (no_overlap IN (0, 1)),
            desired_state TEXT NOT NULL CHECK (desired_state IN ('running', 'stopped')),
            current_release INTEGER,
            system INTEGER NOT NULL CHECK (system IN (0, 1)),
            maintenance_message TEXT,
            body_limit INTEGER NOT NULL CHECK (body_limit > 0),
            last_release INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            FOREIGN KEY (name, current_release) REFERENCES releases (app, number)
        )
        """
    )
    # One row per host (+ path prefix); the primary key is what makes a route belong to
    # exactly one app.
    db.execute(
        """
        CREATE TABLE hosts (
            host TEXT PRIMARY KEY,
            app TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
            position INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX hosts_app ON hosts (app)")
    db.execute(
        """
        CREATE TABLE releases (
            app TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
            number INTEGER NOT NULL CHECK (number > 0),
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL CHECK (size > 0),
            kind TEXT NOT NULL CHECK (kind IN ('binary', 'bundle')),
            command TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('pending', 'live', 'previous', 'failed')),
            reason TEXT,
            status_changed_at TEXT NOT NULL,
            PRIMARY KEY (app, number)
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX releases_one_live ON releases (app) WHERE status = 'live'")
    db.execute("CREATE INDEX releases_sha256 ON releases (sha256)")


def _create_env(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE env (
            app TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (app, key)
        ) WITHOUT ROWID
        """
    )


def _create_events(db: Database) -> None:
    # No foreign key to apps: events are history and outlive the app they speak of.
    # AUTOINCREMENT so an id is never reused once events are pruned: readers tail by id.
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            app TEXT,
            message TEXT NOT NULL,
            data TEXT
        )
        """
    )
    db.execute("CREATE INDEX events_app ON events (app, id)")


def _create_tokens(db: Database) -> None:
    # Only the sha256 of a secret is kept; the secret is shown once, at creation.
    db.execute(
        """
        CREATE TABLE tokens (
            name TEXT PRIMARY KEY,
            scope TEXT NOT NULL CHECK (scope IN ('admin', 'read-only')),
            hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            expires_at TEXT,
            last_used_at TEXT,
            revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
        )
        """
    )


def _add_liveness(db: Database) -> None:
    # Seconds between liveness checks after an app is up; NULL: no liveness checks.
    db.execute("ALTER TABLE apps ADD COLUMN liveness_interval_s REAL")


def _add_https_redirect(db: Database) -> None:
    # 1: the proxy answers plain-HTTP requests for the app with a 308 to https://.
    db.execute("ALTER TABLE apps ADD COLUMN https_redirect INTEGER NOT NULL DEFAULT 0")



def _create_cron_jobs(db: Database) -> None:
    # An app's scheduled jobs (desired config); the hub makes each a transient timer.
    # (Named for its table; it also indexes events by kind for the server page.)
    db.execute(
        """
        CREATE TABLE cron_jobs (
            app TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
            name TEXT NOT NULL,
            schedule TEXT NOT NULL,
            args TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (app, name)
        ) WITHOUT ROWID
        """
    )
    # The server page asks for the newest event of a few kinds (last backup, disk alert).
    db.execute("CREATE INDEX events_by_kind ON events (kind, id)")


def _create_alert_channels(db: Database) -> None:
    # Where alerts go (desired config): one webhook today, a row per kind of channel.
    db.execute(
        """
        CREATE TABLE alert_channels (
            kind TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            updated_at TEXT NOT NULL
        ) WITHOUT ROWID
        """
    )


def _add_processes(db: Database) -> None:
    # A release's process types ({"web": [...], "worker": [...]}: argv for a bundle, arguments
    # to the binary for a binary) and its release command; NULL is the one web process of
    # releases before process types (its command column). app_processes holds the desired
    # scale per process type and each type's optional memory limit and health check path.
    db.execute("ALTER TABLE releases ADD COLUMN processes TEXT")
    db.execute("ALTER TABLE releases ADD COLUMN release_command TEXT")
    db.execute(
        """
        CREATE TABLE app_processes (
            app TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
            process TEXT NOT NULL,
            count INTEGER NOT NULL CHECK (count >= 0),
            memory_max INTEGER,
            health_path TEXT,
            PRIMARY KEY (app, process)
        ) WITHOUT ROWID
        """
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_create_apps_and_releases", _create_apps_and_releases),
    Migration("0002_create_env", _create_env),
    Migration("0003_create_events", _create_events),
    Migration("0004_create_tokens", _create_tokens),
    Migration("0005_add_liveness", _add_liveness),
    Migration("0006_add_https_redirect", _add_https_redirect),
    Migration("0008_create_cron_jobs", _create_cron_jobs),
    Migration("0009_create_alert_channels", _create_alert_channels),
    Migration("0011_add_processes", _add_processes),
)


def _ensure_migrations_table(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS migrations (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            applied_at TEXT NOT NULL
        )
        """
    )


def applied_migrations(db: Database) -> list[str]:
    """Return the names of the migrations applied to ``db``, in order. Does not write."""
    if "migrations" not in db.table_names():
        return []
    return [row["name"] for row in db.query("SELECT name FROM migrations ORDER BY id")]


def apply_migrations(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply the migrations ``db`` lacks, in order; return the names applied now.

    Idempotent: on an up-to-date database it writes nothing and returns ``[]``. Safe when two
    processes start at once: each migration re-checks under the write lock. Raises
    ``Conflict`` without writing when the database holds a migration this code does not know
    (it was written by a newer bindrop).
    """
    applied = applied_migrations(db)
    known = {m.name for m in migrations}
    unknown = [name for name in applied if name not in known]
    if unknown:
        raise Conflict(
            f"the database was written by a newer bindrop (it has migration {unknown[0]!r}, "
            "which this version does not know); upgrade bindrop or restore a backup"
        )
    pending = [m for m in migrations if m.name not in applied]
    if not pending:
        return []
    _ensure_migrations_table(db)
    done: list[str] = []
    for migration in pending:
        with write_transaction(db):
            # Another process may have applied it since we looked; the lock is ours now.
            if db.execute("SELECT 1 FROM migrations WHERE name = ?", [migration.name]).fetchone():
                continue
            migration.apply(db)
            db.execute(
                "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                [migration.name, now_text()],
            )
        done.append(migration.name)
    return done
