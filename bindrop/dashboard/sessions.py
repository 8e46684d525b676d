"""Login sessions: the API's session secret in an HTTP-only cookie, cached here.

The browser never sees the API token after it typed it: at login the dashboard trades it for
a session secret of the API (``POST /v1/sessions``: stored hashed in SQLite, with an expiry)
and the cookie holds that. This process caches who each session is; after a restart of the
dashboard it asks the API again (``restore``), so nobody is logged out by it. Each session
has its own CSRF token (derived from its secret, so it survives a restart too), put in every
form and checked on every POST with a constant-time comparison.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

#: A session ends this long after login, and after this long unused.
MAX_AGE_S = 12 * 3600.0
IDLE_S = 2 * 3600.0
#: Sessions kept at most; the least recently used goes first.
MAX_SESSIONS = 1000


@dataclass
class Session:
    """One logged-in browser. ``token`` is the API token; never log or render it."""

    id: str
    token: str = field(repr=False)
    name: str
    admin: bool
    csrf: str = field(repr=False)
    created: float
    seen: float
    flash: list[tuple[str, str]] = field(default_factory=list)

    def say(self, kind: str, message: str) -> None:
        """Show ``message`` (kind "ok" or "error") on the next page."""
        self.flash.append((kind, message))

    def take_flash(self) -> list[tuple[str, str]]:
        messages, self.flash = self.flash, []
        return messages


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def same_secret(given: object, expected: str) -> bool:
    """Whether ``given`` is ``expected``, in constant time; False for anything not a str."""
    return isinstance(given, str) and bool(given) and hmac.compare_digest(
        given.encode(), expected.encode())


def derive_csrf(session_id: str) -> str:
    """The CSRF token of a session, from its secret. Pure."""
    return hmac.new(session_id.encode(), b"bindrop-csrf", hashlib.sha256).hexdigest()


class SessionStore:
    """The sessions of one dashboard process. ``clock`` is injectable for tests."""

    def __init__(self, *, max_age: float = MAX_AGE_S, idle: float = IDLE_S,
                 max_sessions: int = MAX_SESSIONS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._max_age = max_age
        self._idle = idle
        self._max = max_sessions
        self._clock = clock

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, token: str, name: str, admin: bool, *, session_id: str | None = None
               ) -> Session:
        """A session using ``token`` with the API; ``session_id`` (the cookie) defaults to
        a fresh random one. A given id derives its CSRF token, so a session restored after
        a restart keeps the forms its pages hold."""
        now = self._clock()
        csrf = derive_csrf(session_id) if session_id else new_secret()
        session = Session(session_id or new_secret(), token, name, admin, csrf, now, now)
        self._sessions[session.id] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of that id (and mark it used); None if unknown or expired."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now - session.created > self._max_age or now - session.seen > self._idle:
            del self._sessions[session_id]
            return None
        session.seen = now
        self._sessions.move_to_end(session_id)
        return session

    def drop(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
