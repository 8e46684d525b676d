"""Login sessions of the dashboard: a short-lived secret that stands for a token.

A person logs in to the dashboard with a token; the dashboard trades it (``POST
/v1/sessions``) for a session secret (``bds_…``) that expires, and keeps only that in the
browser's cookie. Only the sha256 of the secret is stored, so the dashboard may restart and
the session lives on. A session authenticates as its token: revoking or expiring the token
ends its sessions too. Expired rows are pruned whenever a session is created.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlite_utils import Database

from bindrop.errors import Unauthorized
from bindrop.store.connection import write_transaction
from bindrop.store.timestamps import parse_timestamp
from bindrop.store.tokens import (
    SECRET_BYTES,
    UNAUTHORIZED,
    Token,
    authenticate,
    get_token,
    hash_token,
)

PREFIX = "bds_"
LIFETIME = timedelta(hours=12)
#: Sessions kept per token at most; the oldest goes first.
PER_TOKEN_MAX = 50


def is_session(text: str) -> bool:
    return text.startswith(PREFIX)


def create_session(db: Database, token: str, lifetime: timedelta = LIFETIME
                   ) -> tuple[str, datetime]:
    """A new session for the token named ``token``: its secret (shown once) and expiry."""
    get_token(db, token)
    text = PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    now = datetime.now(UTC)
    expires = now + lifetime
    with write_transaction(db):
        db.execute("DELETE FROM sessions WHERE expires_at <= ?",
                   [now.isoformat(timespec="microseconds")])
        db.execute("INSERT INTO sessions (hash, token, created_at, expires_at) "
                   "VALUES (?, ?, ?, ?)", [hash_token(text), token,
                                           now.isoformat(timespec="microseconds"),
                                           expires.isoformat(timespec="microseconds")])
        db.execute("DELETE FROM sessions WHERE token = ? AND hash NOT IN (SELECT hash FROM "
                   "sessions WHERE token = ? ORDER BY created_at DESC LIMIT ?)",
                   [token, token, PER_TOKEN_MAX])
    return text, expires


def authenticate_session(db: Database, text: str, now: datetime | None = None) -> Token:
    """The token a live session stands for; ``Unauthorized`` (the tokens' one message) for
    an unknown or expired session, or one whose token is revoked or expired."""
    if not isinstance(text, str) or not is_session(text) or len(text) > 200:
        raise Unauthorized(UNAUTHORIZED)
    digest = hash_token(text)
    rows = list(db.query("SELECT * FROM sessions WHERE hash = ?", [digest]))
    now = now or datetime.now(UTC)
    if (not rows or not hmac.compare_digest(rows[0]["hash"], digest)
            or parse_timestamp(rows[0]["expires_at"]) <= now):
        raise Unauthorized(UNAUTHORIZED)
    token = get_token(db, rows[0]["token"])
    if token.revoked or (token.expires_at is not None and token.expires_at <= now):
        raise Unauthorized(UNAUTHORIZED)
    return token


def authenticate_any(db: Database, text: str, now: datetime | None = None) -> Token:
    """A token's or a session's secret, as the token it is or stands for."""
    if isinstance(text, str) and is_session(text):
        return authenticate_session(db, text, now)
    return authenticate(db, text, now)


def end_session(db: Database, text: str) -> None:
    """Forget the session (idempotent)."""
    db.execute("DELETE FROM sessions WHERE hash = ?", [hash_token(text)])
