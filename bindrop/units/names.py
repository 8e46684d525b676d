"""Names bindrop gives to units and users, and the one parser of bindrop's unit names.

The names a person gives (apps, releases, env keys) are checked in ``bindrop.domain.names``.

An app unit is ``bindrop-app-<app>-<release>.service``. App names may contain ``-`` but release
ids may not, so a unit name splits unambiguously at its last ``-``. The same fact makes a glob
such as ``bindrop-app-blog-*`` also match the app ``blog-api``: filter with
``parse_app_unit_name`` (or the journal field ``BINDROP_APP``), never with a name prefix.
"""

from __future__ import annotations

import hashlib
import re

from bindrop.domain.names import validate_app_name, validate_release_id
from bindrop.errors import InvalidInput

APP_UNIT_PREFIX = "bindrop-app-"
APP_UNIT_SUFFIX = ".service"
SLICE = "bindrop.slice"

# glibc and systemd refuse user names longer than 31 characters (utmp's field is 32 bytes).
USER_NAME_MAX = 31

# An instance token: a release (generation) id, then for every instance but web 1
# "_<process>_<n>" (bindrop.domain.processes builds and parses them).
_INSTANCE_SUFFIX = re.compile(r"_[a-z][a-z0-9]{0,14}_[1-9][0-9]{0,3}")

_USER_PREFIX = "bindrop-"
_USER_HASH_LEN = 8


def app_unit_name(app: str, release: str) -> str:
    """Return ``bindrop-app-<app>-<release>.service`` after validating both parts
    (``release`` may be an instance token, ``3_worker_2``)."""
    validate_app_name(app)
    generation, underscore, _ = release.partition("_")
    validate_release_id(generation)
    if underscore and not _INSTANCE_SUFFIX.fullmatch(release[len(generation):]):
        raise InvalidInput(f"instance {release!r} is not valid: use <release>_<process>_<n>")
    return f"{APP_UNIT_PREFIX}{app}-{release}{APP_UNIT_SUFFIX}"


def parse_app_unit_name(unit: str) -> tuple[str, str] | None:
    """Return ``(app, instance token)`` for a bindrop app unit name, ``None`` for any other.

    The inverse of ``app_unit_name``: ``None`` also for names with the prefix whose parts are
    not a valid app name and instance token (a release id, optionally followed by
    ``_<process>_<n>``; see ``bindrop.domain.processes``).
    """
    if not unit.startswith(APP_UNIT_PREFIX) or not unit.endswith(APP_UNIT_SUFFIX):
        return None
    stem = unit[len(APP_UNIT_PREFIX) : -len(APP_UNIT_SUFFIX)]
    app, sep, release = stem.rpartition("-")
    if not sep:
        return None
    generation, underscore, _ = release.partition("_")
    if underscore and not _INSTANCE_SUFFIX.fullmatch(release[len(generation):]):
        return None
    try:
        validate_app_name(app)
        validate_release_id(generation)
    except InvalidInput:
        return None
    return app, release


def dynamic_user_name(app: str) -> str:
    """Return the systemd ``DynamicUser`` name shared by every release of ``app``.

    One name per app, not per release: two releases running side by side during a deploy then
    share one UID, so the app's ``StateDirectory`` keeps its owner instead of being chowned back
    and forth. ``bindrop-<app>`` when it fits in 31 characters; otherwise the first characters
    of the app name, ``_`` and 8 hex digits of its SHA-256. Deterministic, and injective in
    practice: app names never contain ``_``, so a shortened name never equals a full one.
    """
    validate_app_name(app)
    full = _USER_PREFIX + app
    if len(full) <= USER_NAME_MAX:
        return full
    digest = hashlib.sha256(app.encode()).hexdigest()[:_USER_HASH_LEN]
    keep = USER_NAME_MAX - len(_USER_PREFIX) - 1 - _USER_HASH_LEN
    return f"{_USER_PREFIX}{app[:keep].rstrip('-')}_{digest}"
