"""Where alerts go (``bindrop alerts set --webhook URL``): desired config, one channel.

A single row: the webhook URL (or none) and when it was set. Whether an alert is pending or
was sent is run-state and lives in the hub only.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlite_utils import Database

from bindrop.errors import InvalidInput
from bindrop.store.connection import write_transaction
from bindrop.store.timestamps import now_text

URL_MAX = 2000
CHANNEL = "webhook"


def parse_webhook_url(text: object) -> str:
    """An ``http(s)://`` URL with a host and a valid port; ``InvalidInput`` otherwise (never
    repeating the URL, which may hold credentials). Pure."""
    if (not isinstance(text, str) or len(text) > URL_MAX
            or any(c.isspace() or not c.isprintable() for c in text)):
        raise InvalidInput("the webhook must be an http:// or https:// URL (no spaces or "
                           "control characters)")
    try:
        parts = urlsplit(text)
        host = parts.hostname
        if parts.port == 0:  # ValueError for one out of range or not a number
            host = None
        if host and ":" not in host:  # an IPv6 address has no labels
            host.encode("idna")  # UnicodeError: an empty or too long label
    except (ValueError, UnicodeError):
        host = None
    else:
        if parts.scheme not in ("http", "https"):
            host = None
    if not host:
        raise InvalidInput("the webhook must be an http:// or https:// URL with a host name "
                           "(and a port from 1 to 65535, if any)")
    return text


def get_webhook(db: Database) -> str | None:
    row = db.execute("SELECT url FROM alert_channels WHERE kind = ?", [CHANNEL]).fetchone()
    return str(row[0]) if row and row[0] else None


def set_webhook(db: Database, url: str | None) -> str | None:
    """Set (or with None, remove) the webhook; returns it."""
    if url is not None:
        url = parse_webhook_url(url)
    with write_transaction(db):
        db.execute("DELETE FROM alert_channels WHERE kind = ?", [CHANNEL])
        if url is not None:
            db.execute("INSERT INTO alert_channels (kind, url, updated_at) VALUES (?, ?, ?)",
                       [CHANNEL, url, now_text()])
    return url
