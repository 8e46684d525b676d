"""Each app's environment: variables the user sets for every release of the app.

Values are secrets as often as not: nothing here logs them, and ``mask_env`` is what to show
a person by default.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlite_utils import Database

from bindrop.domain.names import validate_env_key
from bindrop.errors import InvalidInput, NotFound
from bindrop.store.apps import require_app
from bindrop.store.connection import write_transaction

RESERVED_PREFIX = "BINDROP_"
VALUE_MAX = 32 * 1024
MASK = "••••"

# A key containing any of these is shown masked. Over-masking (MONKEY, AUTHOR) is harmless;
# showing a secret is not.
SECRET_WORDS = (
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PWD",
    "KEY",
    "PRIVATE",
    "CREDENTIAL",
    "AUTH",
    "DSN",
    "DATABASE_URL",
    "SALT",
    "COOKIE",
    "SESSION",
    "SIGNATURE",
    "CERT",
)


def validate_env(env: Mapping[str, str]) -> dict[str, str]:
    """Return ``env`` as a dict if a user may set all of it; ``InvalidInput`` otherwise. Pure.

    Keys are shell-style names; ``PORT`` and every ``BINDROP_*`` name are bindrop's own.
    Values are text without NUL or line breaks (systemd could not pass them on intact).
    """
    if not isinstance(env, Mapping):
        raise InvalidInput("environment must be a mapping of names to values")
    for key, value in env.items():
        validate_env_key(key)
        if key.startswith(RESERVED_PREFIX):
            raise InvalidInput(
                f"environment variable {key} is not allowed: names starting with "
                f"{RESERVED_PREFIX} are reserved for bindrop; choose another name"
            )
        if not isinstance(value, str):
            raise InvalidInput(f"the value of {key} must be text, not {type(value).__name__}")
        if "\0" in value or "\n" in value or "\r" in value:
            raise InvalidInput(
                f"the value of {key} contains a NUL character or a line break, which an "
                "environment variable cannot carry; encode it (e.g. base64) first"
            )
        if len(value) > VALUE_MAX:
            raise InvalidInput(
                f"the value of {key} is longer than {VALUE_MAX} characters; put large data "
                "in a file in the app's state directory instead"
            )
    return dict(env)


def looks_secret(key: str) -> bool:
    """Return whether a variable named ``key`` probably holds a secret. Pure."""
    upper = key.upper()
    return any(word in upper for word in SECRET_WORDS)


def mask_env(env: Mapping[str, str]) -> dict[str, str]:
    """Return ``env`` with the value of every secret-looking key replaced by ``"••••"``.

    Pure. Nothing of a masked value is shown, not even its length or last characters.
    """
    return {key: MASK if looks_secret(key) else value for key, value in env.items()}


def set_env(db: Database, app: str, env: Mapping[str, str]) -> None:
    """Set (add or replace) the given variables of ``app``; others stay as they are.

    All of them or none: ``InvalidInput`` for any bad key or value and ``NotFound`` for a
    missing app write nothing.
    """
    values = validate_env(env)
    with write_transaction(db):
        require_app(db, app)
        db.conn.executemany(
            """
            INSERT INTO env (app, key, value) VALUES (?, ?, ?)
            ON CONFLICT (app, key) DO UPDATE SET value = excluded.value
            """,
            [(app, key, value) for key, value in values.items()],
        )


def unset_env(db: Database, app: str, keys: Iterable[str]) -> None:
    """Remove the given variables of ``app``, all of them or none.

    ``NotFound`` naming every key that is not set (nothing removed then).
    """
    if isinstance(keys, str):
        keys = [keys]
    wanted = list(dict.fromkeys(keys))
    with write_transaction(db):
        current = get_env(db, app)
        missing = [key for key in wanted if key not in current]
        if missing:
            names = ", ".join(missing)
            raise NotFound(f"app {app!r} has no environment variable {names}")
        db.conn.executemany(
            "DELETE FROM env WHERE app = ? AND key = ?", [(app, key) for key in wanted]
        )


def get_env(db: Database, app: str) -> dict[str, str]:
    """Return the environment of ``app`` sorted by key; ``NotFound`` for a missing app."""
    require_app(db, app)
    return {
        row[0]: row[1]
        for row in db.execute("SELECT key, value FROM env WHERE app = ? ORDER BY key", [app])
    }
