"""Automatic HTTPS: the ACME settings (desired config) and each name's attempts (history).

One settings row says which CA to use and for whom (``bindrop tls setup``); a row per name
records how its last attempt went, how many failed in a row and when the next may be made
(backoff). Whether a certificate is valid is read from its file, never stored here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from bindrop.errors import InvalidInput
from bindrop.store.connection import write_transaction
from bindrop.store.timestamps import now_text

EMAIL_MAX = 254
DIRECTORY_MAX = 2048


@dataclass(frozen=True)
class TlsSettings:
    """Where certificates come from. ``enabled`` False: ``bindrop tls off`` (or never set up)."""

    email: str = ""
    directory: str = ""
    enabled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"email": self.email, "directory": self.directory, "enabled": self.enabled}


@dataclass(frozen=True)
class NameAttempts:
    """How getting a certificate for ``name`` went: failures in a row, the CA's last reason,
    and the earliest time (ISO text, UTC) of the next automatic attempt."""

    name: str
    failures: int = 0
    last_error: str | None = None
    last_attempt: str | None = None
    next_attempt: str | None = None


def validate_tls_settings(email: object, directory: object) -> tuple[str, str]:
    """``(email, directory)`` checked; ``InvalidInput`` naming what is wrong. Pure."""
    if (not isinstance(email, str) or len(email) > EMAIL_MAX or email.count("@") != 1
            or any(c.isspace() or ord(c) < 32 for c in email)
            or not all(email.split("@"))):
        raise InvalidInput("give the email the CA may write to about your certificates, "
                           "e.g. --email you@example.com")
    if (not isinstance(directory, str) or len(directory) > DIRECTORY_MAX
            or not directory.startswith("https://")
            or any(c.isspace() or ord(c) < 32 for c in directory)):
        raise InvalidInput("the ACME directory must be an https:// URL, e.g. "
                           "https://acme-v02.api.letsencrypt.org/directory")
    return email, directory


def get_tls_settings(db: Database) -> TlsSettings:
    row = next(db.query("SELECT email, directory, enabled FROM tls_settings WHERE id = 1"), None)
    if row is None:
        return TlsSettings()
    return TlsSettings(row["email"], row["directory"], bool(row["enabled"]))


def set_tls_settings(db: Database, email: str, directory: str, enabled: bool) -> TlsSettings:
    email, directory = validate_tls_settings(email, directory)
    with write_transaction(db):
        db.execute(
            "INSERT INTO tls_settings (id, email, directory, enabled, updated_at) "
            "VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET email = excluded.email, "
            "directory = excluded.directory, enabled = excluded.enabled, "
            "updated_at = excluded.updated_at",
            [email, directory, int(enabled), now_text()])
    return get_tls_settings(db)


def disable_tls(db: Database) -> TlsSettings:
    with write_transaction(db):
        db.execute("UPDATE tls_settings SET enabled = 0, updated_at = ? WHERE id = 1",
                   [now_text()])
    return get_tls_settings(db)


def _attempts(row: Mapping[str, Any]) -> NameAttempts:
    return NameAttempts(row["name"], row["failures"], row["last_error"], row["last_attempt"],
                        row["next_attempt"])


def list_name_attempts(db: Database) -> dict[str, NameAttempts]:
    return {row["name"]: _attempts(row) for row in db.query(
        "SELECT name, failures, last_error, last_attempt, next_attempt FROM tls_names "
        "ORDER BY name")}


def record_attempt(db: Database, name: str, *, error: str | None,
                   next_attempt: str | None) -> NameAttempts:
    """Record one attempt for ``name``: a success (``error`` None) clears its failures; a
    failure counts one more and keeps the CA's reason."""
    with write_transaction(db):
        row = next(db.query("SELECT failures FROM tls_names WHERE name = ?", [name]), None)
        failures = 0 if error is None else (row["failures"] if row else 0) + 1
        db.execute(
            "INSERT INTO tls_names (name, failures, last_error, last_attempt, next_attempt) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "failures = excluded.failures, last_error = excluded.last_error, "
            "last_attempt = excluded.last_attempt, next_attempt = excluded.next_attempt",
            [name, failures, error, now_text(), next_attempt])
    return list_name_attempts(db)[name]
