"""Names a person gives to bindrop: apps, releases and environment keys.

Pure validators: each returns its argument or raises ``InvalidInput`` with a message that says
what is allowed. App names may contain ``-`` but release ids may not, and neither contains
``_``: unit names (``bindrop.units.names``) and instance tokens (``bindrop.domain.processes``)
rely on both to split unambiguously.
"""

from __future__ import annotations

import re

from bindrop.errors import InvalidInput

APP_NAME_MAX = 40
RELEASE_ID_MAX = 20

# Set by bindrop on every release; a user value would break routing or the journal fields.
RESERVED_ENV_KEYS = frozenset({"PORT", "BINDROP_APP", "BINDROP_RELEASE", "BINDROP_PROCESS",
                               "BINDROP_INSTANCE"})

_APP_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_RELEASE_ID = re.compile(r"[a-z0-9][a-z0-9.]*")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def validate_app_name(name: str) -> str:
    """Return ``name`` if it is a valid app name (a lowercase DNS label of 1-40 characters)."""
    if not isinstance(name, str) or len(name) > APP_NAME_MAX or not _APP_NAME.fullmatch(name):
        raise InvalidInput(
            f"app name {name!r} is not valid: use 1-{APP_NAME_MAX} lowercase letters, digits "
            "and '-', starting and ending with a letter or digit"
        )
    return name


def validate_release_id(rid: str) -> str:
    """Return ``rid`` if it is a valid release id: 1-20 of ``[a-z0-9.]``, no ``-``."""
    if not isinstance(rid, str) or len(rid) > RELEASE_ID_MAX or not _RELEASE_ID.fullmatch(rid):
        raise InvalidInput(
            f"release id {rid!r} is not valid: use 1-{RELEASE_ID_MAX} lowercase letters, "
            "digits and '.', starting with a letter or digit (no '-')"
        )
    return rid


def validate_env_key(key: str) -> str:
    """Return ``key`` if a user may set it in an app's environment.

    Refuses names that are not shell-style identifiers, and the reserved names bindrop sets
    itself on every release (``PORT``, ``BINDROP_APP``, ``BINDROP_RELEASE``).
    """
    if not isinstance(key, str) or not _ENV_KEY.fullmatch(key):
        raise InvalidInput(
            f"environment variable name {key!r} is not valid: use letters, digits and '_', "
            "not starting with a digit"
        )
    if key in RESERVED_ENV_KEYS:
        raise InvalidInput(
            f"environment variable {key} is set by bindrop for every release; choose another name"
        )
    return key
