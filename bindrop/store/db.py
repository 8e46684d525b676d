"""``Store``: bindrop's desired config and history in one SQLite file.

The hub is the only writer. It opens one ``Store`` at start-up (which migrates the schema)
and every change to apps, env, releases or events goes through it; the API, the CLI and the
dashboard ask the hub, never the file. SQLite is never a message bus and never holds
run-state: whether an app runs, its PID or its port are systemd's and the state store's.

Every method validates its input first: a bad value raises ``InvalidInput`` with a message a
person can act on and writes nothing, and a change of several rows happens in one transaction.
Plain synchronous use from the thread that opened it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from bindrop.settings import Settings
from bindrop.store import alerts, apps, cron, env, events, processes, releases, tokens
from bindrop.store.apps import AppConfig
from bindrop.store.connection import connect
from bindrop.store.events import Event
from bindrop.store.migrations import apply_migrations
from bindrop.store.releases import DEFAULT_KEEP, Release, ReleaseKind, ReleaseStatus
from bindrop.store.tokens import Scope, Token

EventListener = Callable[[Event], None]


class Store:
    """The SQLite store at ``path``, migrated to the latest schema on opening."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.db = connect(self.path)
        self._event_listeners: list[EventListener] = []
        try:
            apply_migrations(self.db)
        except BaseException:
            self.db.close()
            raise

    @classmethod
    def open(cls, settings: Settings) -> Store:
        """Open ``settings.db_path``, creating its directory if needed."""
        settings.db_path.parent.mkdir(parents=True, exist_ok=True)
        return cls(settings.db_path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # apps

    def create_app(self, config: AppConfig) -> AppConfig:
        """See ``bindrop.store.apps.create_app``: ``Conflict`` if it exists or a host is taken."""
        return apps.create_app(self.db, config)

    def get_app(self, name: str) -> AppConfig:
        """``NotFound`` saying how to create the app if there is none."""
        return apps.get_app(self.db, name)

    def list_apps(self, include_system: bool = False) -> list[AppConfig]:
        return apps.list_apps(self.db, include_system=include_system)

    def update_app(self, name: str, /, **changes: object) -> AppConfig:
        """See ``bindrop.store.apps.update_app``; does not write on error."""
        return apps.update_app(self.db, name, changes)

    def delete_app(self, name: str) -> set[str]:
        """Delete the app, its env and releases; return the blobs nothing references now."""
        return apps.delete_app(self.db, name)

    # env

    def set_env(self, app: str, values: Mapping[str, str]) -> None:
        """Set the given variables, all or none (``InvalidInput`` writes nothing)."""
        env.set_env(self.db, app, values)

    def unset_env(self, app: str, keys: Iterable[str]) -> None:
        """Remove the given variables, all or none (``NotFound`` names keys not set)."""
        env.unset_env(self.db, app, keys)

    def get_env(self, app: str) -> dict[str, str]:
        return env.get_env(self.db, app)

    # releases

    def add_release(
        self,
        app: str,
        sha256: str,
        size: int,
        kind: ReleaseKind,
        command: Sequence[str],
        created_by: str,
        processes: Mapping[str, Sequence[str]] | None = None,
        release_command: Sequence[str] | None = None,
    ) -> Release:
        """Record a ``pending`` release with the app's next number (from 1)."""
        return releases.add_release(self.db, app, sha256, size, kind, command, created_by,
                                    processes, release_command)

    # process types: desired scale and per-process settings

    def get_processes(self, app: str) -> dict[str, processes.ProcessConfig]:
        return processes.get_processes(self.db, app)

    def set_processes(self, app: str, configs: Mapping[str, processes.ProcessConfig]) -> None:
        """Replace the given processes' settings (others stay), all or none."""
        processes.set_processes(self.db, app, configs)

    def get_release(self, app: str, number: int) -> Release:
        return releases.get_release(self.db, app, number)

    def list_releases(self, app: str) -> list[Release]:
        """Newest first."""
        return releases.list_releases(self.db, app)

    def set_release_status(
        self, app: str, number: int, status: ReleaseStatus, reason: str | None = None
    ) -> Release:
        """Marking one ``live`` demotes the former live one to ``previous``, atomically."""
        return releases.set_release_status(self.db, app, number, status, reason)

    def releases_to_collect(self, app: str, keep: int = DEFAULT_KEEP) -> list[Release]:
        """Older than the newest ``keep``; never the live one or the current release."""
        return releases.releases_to_collect(self.db, app, keep)

    def delete_releases(self, app: str, numbers: Iterable[int]) -> set[str]:
        """Delete releases, all or none; return the blobs nothing references now."""
        return releases.delete_releases(self.db, app, numbers)

    def referenced_blobs(self) -> set[str]:
        return releases.referenced_blobs(self.db)

    # events

    def add_event(
        self,
        kind: str,
        app: str | None = None,
        message: str = "",
        data: Mapping[str, Any] | None = None,
    ) -> Event:
        event = events.add_event(self.db, kind, app, message, data)
        for listener in list(self._event_listeners):
            listener(event)
        return event

    def subscribe_events(self, listener: EventListener) -> Callable[[], None]:
        """Call ``listener`` with every event added from now on (after it is stored),
        synchronously. Returns the unsubscribe. A listener must not raise."""
        self._event_listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._event_listeners:
                self._event_listeners.remove(listener)

        return unsubscribe

    def list_events(
        self, app: str | None = None, after_id: int | None = None, limit: int = 100
    ) -> list[Event]:
        """Oldest first: the newest ``limit``, or the first ``limit`` after ``after_id``."""
        return events.list_events(self.db, app, after_id, limit)

    def last_event_of(self, kinds: Sequence[str]) -> Event | None:
        """The newest event of any of ``kinds`` (``backup_succeeded``, …), or None."""
        return events.last_event_of(self.db, kinds)

    # cron jobs

    def add_cron_job(self, app: str, name: str, schedule: str,
                     args: Sequence[str]) -> cron.CronJob:
        """See ``bindrop.store.cron.add_cron_job``: ``Conflict`` if the name is taken."""
        return cron.add_cron_job(self.db, app, name, schedule, args)

    def list_cron_jobs(self, app: str | None = None) -> list[cron.CronJob]:
        return cron.list_cron_jobs(self.db, app)

    def remove_cron_job(self, app: str, name: str) -> cron.CronJob:
        """``NotFound`` if there is no such job."""
        return cron.remove_cron_job(self.db, app, name)

    # alerts

    def alert_webhook(self) -> str | None:
        return alerts.get_webhook(self.db)

    def set_alert_webhook(self, url: str | None) -> str | None:
        """``InvalidInput`` for anything but an http(s) URL; None removes it."""
        return alerts.set_webhook(self.db, url)

    # tokens

    def create_token(
        self, name: str, scope: Scope, lifetime: timedelta | None = None
    ) -> tuple[str, Token]:
        """Return the token's text (show it once, never store it) and its record."""
        return tokens.create_token(self.db, name, scope, lifetime)

    def list_tokens(self) -> list[Token]:
        return tokens.list_tokens(self.db)

    def revoke_token(self, name: str) -> Token:
        return tokens.revoke_token(self.db, name)

    def authenticate(self, text: str, now: datetime | None = None) -> Token:
        """``Unauthorized`` for a wrong, revoked or expired token, with one message."""
        return tokens.authenticate(self.db, text, now)
