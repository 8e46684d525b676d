"""How the store writes times: ISO 8601 text in UTC, which sorts as it reads."""

from __future__ import annotations

from datetime import UTC, datetime


def now_text() -> str:
    """Return the current UTC time as ISO 8601 text with microseconds and ``+00:00``."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def parse_timestamp(text: str) -> datetime:
    """Return the aware ``datetime`` for text written by ``now_text``."""
    return datetime.fromisoformat(text)
