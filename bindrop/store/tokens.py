"""API tokens: a name, a scope and the sha256 of a secret that was shown once.

The secret itself is never stored, logged or returned after creation: ``new_token`` makes the
text a person keeps (``bd_<43 url-safe characters>``), ``hash_token`` what the store keeps.
A token that is revoked or past ``expires_at`` authenticates nothing; the caller answers all
such failures alike (401) so a guesser learns nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from sqlite_utils import Database

from bindrop.errors import Conflict, InvalidInput, NotFound, Unauthorized
from bindrop.store.connection import write_transaction
from bindrop.store.timestamps import now_text, parse_timestamp

Scope = Literal["admin", "read-only"]

PREFIX = "bd_"
SECRET_BYTES = 32
NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?")
_DURATION = re.compile(r"(\d+)\s*([mhdwy])")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
MAX_LIFETIME_S = 10 * 365 * 86400
# last_used_at is history for people; writing it on every request would make each read a write.
TOUCH_EVERY = timedelta(minutes=1)
UNAUTHORIZED = "the token is not valid (wrong, revoked or expired); create one with " \
               "`bindrop token create NAME` on the server"


@dataclass(frozen=True)
class Token:
    """A token as stored, without its secret."""

    name: str
    scope: Scope
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "scope": self.scope,
                "created_at": self.created_at.isoformat(),
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
                "revoked": self.revoked}


def new_token() -> str:
    """A fresh token text: ``bd_`` and 32 random bytes, url-safe base64."""
    return PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def hash_token(text: str) -> str:
    """The sha256 (hex) the store keeps of a token text. Pure."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def validate_token_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidInput(
            f"token name {name!r} is not valid: use 1-64 lowercase letters, digits, '.', '_' "
            "and '-', starting and ending with a letter or digit (e.g. ci or laptop)")
    return name


def validate_scope(scope: object) -> Scope:
    if scope not in get_args(Scope):
        raise InvalidInput(f"token scope {scope!r} is not valid: use 'admin' or 'read-only'")
    return scope  # type: ignore[return-value]


def parse_duration(text: str) -> timedelta:
    """``"90d"``, ``"12h"``, ``"30m"``, ``"2w"``, ``"1y"`` -> a timedelta. Pure."""
    match = _DURATION.fullmatch(text.strip().lower()) if isinstance(text, str) else None
    seconds = int(match[1]) * _UNITS[match[2]] if match else 0
    if not 0 < seconds <= MAX_LIFETIME_S:
        raise InvalidInput(
            f"duration {text!r} is not valid: use a number and a unit, such as 30m, 12h, 90d, "
            "2w or 1y (at most 10y)")
    return timedelta(seconds=seconds)


def _from_row(row: Mapping[str, Any]) -> Token:
    return Token(
        name=row["name"],
        scope=row["scope"],
        created_at=parse_timestamp(row["created_at"]),
        expires_at=parse_timestamp(row["expires_at"]) if row["expires_at"] else None,
        last_used_at=parse_timestamp(row["last_used_at"]) if row["last_used_at"] else None,
        revoked=bool(row["revoked"]),
    )


def create_token(db: Database, name: str, scope: Scope,
                 lifetime: timedelta | None = None) -> tuple[str, Token]:
    """Store a new token; return its text (shown once) and the stored record.

    ``Conflict`` if a token of that name exists (revoked ones too: names stay unique so the
    history of who did what stays readable).
    """
    validate_token_name(name)
    validate_scope(scope)
    text = new_token()
    now = datetime.now(UTC)
    expires = (now + lifetime).isoformat(timespec="microseconds") if lifetime else None
    with write_transaction(db):
        if db.execute("SELECT 1 FROM tokens WHERE name = ?", [name]).fetchone():
            raise Conflict(f"a token named {name!r} exists already; choose another name or "
                           f"revoke it with `bindrop token revoke {name}` and pick a new one")
        db.execute(
            "INSERT INTO tokens (name, scope, hash, created_at, expires_at, last_used_at, revoked)"
            " VALUES (?, ?, ?, ?, ?, NULL, 0)",
            [name, scope, hash_token(text), now.isoformat(timespec="microseconds"), expires])
    return text, get_token(db, name)


def get_token(db: Database, name: str) -> Token:
    rows = list(db.query("SELECT * FROM tokens WHERE name = ?", [validate_token_name(name)]))
    if not rows:
        raise NotFound(f"no token named {name!r}; see `bindrop token list`")
    return _from_row(rows[0])


def list_tokens(db: Database) -> list[Token]:
    return [_from_row(row) for row in db.query("SELECT * FROM tokens ORDER BY name")]


def revoke_token(db: Database, name: str) -> Token:
    """Mark the token revoked (idempotent); ``NotFound`` if there is none of that name."""
    with write_transaction(db):
        get_token(db, name)
        db.execute("UPDATE tokens SET revoked = 1 WHERE name = ?", [name])
    return get_token(db, name)


def authenticate(db: Database, text: str, now: datetime | None = None) -> Token:
    """The live token whose secret is ``text``; ``Unauthorized`` (one message) otherwise.

    Looks the row up by hash, then compares the hashes in constant time. Records when it was
    last used, at most once a minute.
    """
    if not isinstance(text, str) or not text.startswith(PREFIX) or len(text) > 200:
        raise Unauthorized(UNAUTHORIZED)
    digest = hash_token(text)
    rows = list(db.query("SELECT * FROM tokens WHERE hash = ?", [digest]))
    if not rows or not hmac.compare_digest(rows[0]["hash"], digest):
        raise Unauthorized(UNAUTHORIZED)
    token = _from_row(rows[0])
    now = now or datetime.now(UTC)
    if token.revoked or (token.expires_at is not None and token.expires_at <= now):
        raise Unauthorized(UNAUTHORIZED)
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        db.execute("UPDATE tokens SET last_used_at = ? WHERE name = ?", [now_text(), token.name])
    return token
