"""Apps: what the user wants each app to be. Desired config only, never run-state.

``AppConfig`` is both what a caller asks for and what the store returns. The store sets
``created_at`` and ``updated_at``; values passed in for them are ignored. ``validate_app``
is the pure check every write goes through; the functions below it take the hub's
connection and write in one transaction, or not at all.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from sqlite_utils import Database

from bindrop.domain.hosts import parse_host
from bindrop.domain.limits import Limits
from bindrop.domain.names import validate_app_name
from bindrop.domain.timespans import TIMEOUT_MAX_S
from bindrop.errors import Conflict, InvalidInput, NotFound
from bindrop.store.connection import write_transaction
from bindrop.store.timestamps import now_text, parse_timestamp

DesiredState = Literal["running", "stopped"]

DEFAULT_HEALTH_TIMEOUT_S = 30.0
DEFAULT_IDLE_TIMEOUT_S = 900.0
DEFAULT_BODY_LIMIT = 100 * 1024 * 1024
MAINTENANCE_MESSAGE_MAX = 2000
HEALTH_PATH_MAX = 1024
_SQLITE_INT_MAX = 2**63 - 1

# Fields the store owns: never changed through update_app.
_READ_ONLY = frozenset({"name", "created_at", "updated_at"})


@dataclass(frozen=True)
class AppConfig:
    """One app as the user wants it.

    ``hosts`` is kept as a tuple. ``health_path`` ``None`` means "ready when the port accepts
    a TCP connection". ``memory_max`` in bytes, ``cpu_quota`` in percent of one CPU,
    ``tasks_max`` in tasks; ``None`` is no limit. ``current_release`` is the number of the
    release that should run (after a reboot too), or ``None`` before the first deploy.
    """

    name: str
    hosts: Sequence[str] = ()
    health_path: str | None = None
    health_timeout_s: float = DEFAULT_HEALTH_TIMEOUT_S
    memory_max: int | None = None
    cpu_quota: int | None = None
    tasks_max: int | None = None
    on_demand: bool = False
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    liveness_interval_s: float | None = None
    no_overlap: bool = False
    desired_state: DesiredState = "running"
    current_release: int | None = None
    system: bool = False
    maintenance_message: str | None = None
    body_limit: int = DEFAULT_BODY_LIMIT
    https_redirect: bool = False
    #: No certificate for the app's hosts (automatic HTTPS leaves them alone).
    no_tls: bool = False
    #: Plain HTTP keeps answering once a certificate is valid (no 308 to https://).
    allow_http: bool = False
    #: HTTPS answers carry Strict-Transport-Security.
    hsts: bool = False
    created_at: datetime | None = field(default=None, compare=False)
    updated_at: datetime | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.hosts, str):
            object.__setattr__(self, "hosts", tuple(self.hosts))

    @property
    def limits(self) -> Limits:
        return Limits(self.memory_max, self.cpu_quota, self.tasks_max)


def validate_app(config: AppConfig) -> AppConfig:
    """Return ``config`` with hosts canonical and deduplicated; ``InvalidInput`` if any field
    is not valid, naming the field and what is allowed. Pure."""
    validate_app_name(config.name)
    if isinstance(config.hosts, str):
        raise InvalidInput(f"hosts must be a list of names, not the string {config.hosts!r}")
    hosts = tuple(dict.fromkeys(parse_host(h) for h in config.hosts))
    _check_health_path(config.health_path)
    health_timeout_s = _seconds("health timeout", config.health_timeout_s)
    idle_timeout_s = _seconds("idle timeout", config.idle_timeout_s)
    liveness = config.liveness_interval_s
    if liveness is not None:
        liveness = _seconds("liveness interval", liveness)
    Limits(config.memory_max, config.cpu_quota, config.tasks_max)  # raises InvalidInput
    for flag in ("on_demand", "no_overlap", "system", "https_redirect", "no_tls",
                 "allow_http", "hsts"):
        if not isinstance(getattr(config, flag), bool):
            raise InvalidInput(f"{flag} must be true or false, not {getattr(config, flag)!r}")
    if config.desired_state not in get_args(DesiredState):
        raise InvalidInput(
            f"desired state {config.desired_state!r} is not valid: use 'running' or 'stopped'"
        )
    if config.current_release is not None and not _positive_int(config.current_release):
        raise InvalidInput(
            f"current release {config.current_release!r} is not valid: use a release number"
        )
    _check_maintenance_message(config.maintenance_message)
    if not _positive_int(config.body_limit):
        raise InvalidInput(
            f"body limit {config.body_limit!r} is not valid: use a positive number of bytes"
        )
    return dataclasses.replace(
        config, hosts=hosts, health_timeout_s=health_timeout_s, idle_timeout_s=idle_timeout_s,
        liveness_interval_s=liveness,
    )


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _SQLITE_INT_MAX


def _seconds(what: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= TIMEOUT_MAX_S
    ):
        raise InvalidInput(
            f"{what} {value!r} is not valid: use a number of seconds above 0 and at most "
            f"{TIMEOUT_MAX_S:g}"
        )
    return float(value)


def _check_health_path(path: object) -> None:
    if path is None:
        return
    if (
        not isinstance(path, str)
        or not path.startswith("/")
        or len(path) > HEALTH_PATH_MAX
        or any(c.isspace() or not c.isprintable() or c == "#" for c in path)
    ):
        raise InvalidInput(
            f"health path {path!r} is not valid: use a URL path starting with '/' such as "
            "/healthz (no spaces), or none to check that the port accepts connections"
        )


def _check_maintenance_message(message: object) -> None:
    if message is None:
        return
    if (
        not isinstance(message, str)
        or not message.strip()
        or len(message) > MAINTENANCE_MESSAGE_MAX
        or any(c not in "\r\n\t" and not c.isprintable() for c in message)
    ):
        raise InvalidInput(
            f"maintenance message is not valid: use 1-{MAINTENANCE_MESSAGE_MAX} characters of "
            "text (line breaks allowed, no control characters), or none to end maintenance"
        )


def _row(config: AppConfig) -> dict[str, object]:
    return {
        "name": config.name,
        "health_path": config.health_path,
        "health_timeout_s": config.health_timeout_s,
        "memory_max": config.memory_max,
        "cpu_quota": config.cpu_quota,
        "tasks_max": config.tasks_max,
        "on_demand": int(config.on_demand),
        "idle_timeout_s": config.idle_timeout_s,
        "liveness_interval_s": config.liveness_interval_s,
        "no_overlap": int(config.no_overlap),
        "desired_state": config.desired_state,
        "current_release": config.current_release,
        "system": int(config.system),
        "maintenance_message": config.maintenance_message,
        "body_limit": config.body_limit,
        "https_redirect": int(config.https_redirect),
        "no_tls": int(config.no_tls),
        "allow_http": int(config.allow_http),
        "hsts": int(config.hsts),
    }


def _from_row(row: Mapping[str, Any], hosts: Sequence[str]) -> AppConfig:
    return AppConfig(
        name=row["name"],
        hosts=tuple(hosts),
        health_path=row["health_path"],
        health_timeout_s=row["health_timeout_s"],
        memory_max=row["memory_max"],
        cpu_quota=row["cpu_quota"],
        tasks_max=row["tasks_max"],
        on_demand=bool(row["on_demand"]),
        idle_timeout_s=row["idle_timeout_s"],
        liveness_interval_s=row["liveness_interval_s"],
        no_overlap=bool(row["no_overlap"]),
        desired_state=row["desired_state"],
        current_release=row["current_release"],
        system=bool(row["system"]),
        maintenance_message=row["maintenance_message"],
        body_limit=row["body_limit"],
        https_redirect=bool(row["https_redirect"]),
        no_tls=bool(row["no_tls"]),
        allow_http=bool(row["allow_http"]),
        hsts=bool(row["hsts"]),
        created_at=parse_timestamp(row["created_at"]),
        updated_at=parse_timestamp(row["updated_at"]),
    )


def require_app(db: Database, name: str) -> None:
    """Return if the app ``name`` exists; ``InvalidInput`` for a bad name, ``NotFound``
    saying how to create it otherwise. Does not write."""
    validate_app_name(name)
    if not db.execute("SELECT 1 FROM apps WHERE name = ?", [name]).fetchone():
        raise _not_found(name)


def _not_found(name: str) -> NotFound:
    return NotFound(f"no app named {name!r}; create it with `bindrop create {name} --host HOST`")


def _check_hosts_free(db: Database, config: AppConfig) -> None:
    for host in config.hosts:
        owner = db.execute("SELECT app FROM hosts WHERE host = ?", [host]).fetchone()
        if owner and owner[0] != config.name:
            raise Conflict(
                f"host {host} already belongs to app {owner[0]!r}; remove it from "
                f"{owner[0]!r} first or choose another host"
            )


def _check_release_exists(db: Database, name: str, number: int | None) -> None:
    if number is None:
        return
    found = db.execute(
        "SELECT 1 FROM releases WHERE app = ? AND number = ?", [name, number]
    ).fetchone()
    if not found:
        raise NotFound(f"app {name!r} has no release {number}; deploy it first")


def _write_hosts(db: Database, config: AppConfig) -> None:
    db.execute("DELETE FROM hosts WHERE app = ?", [config.name])
    for position, host in enumerate(config.hosts):
        db.execute(
            "INSERT INTO hosts (host, app, position) VALUES (?, ?, ?)",
            [host, config.name, position],
        )


def create_app(db: Database, config: AppConfig) -> AppConfig:
    """Store a new app and return it as stored. Does not write on error.

    ``Conflict`` if an app of that name exists or one of its hosts belongs to another app;
    ``InvalidInput`` for a bad field, and for a ``current_release`` (a new app has none).
    """
    config = validate_app(config)
    if config.current_release is not None:
        raise InvalidInput("a new app has no releases yet: leave current_release unset")
    with write_transaction(db):
        if db.execute("SELECT 1 FROM apps WHERE name = ?", [config.name]).fetchone():
            raise Conflict(f"app {config.name!r} exists already")
        _check_hosts_free(db, config)
        now = now_text()
        row = _row(config) | {"created_at": now, "updated_at": now}
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        db.execute(f"INSERT INTO apps ({columns}) VALUES ({marks})", list(row.values()))
        _write_hosts(db, config)
    return get_app(db, config.name)


def get_app(db: Database, name: str) -> AppConfig:
    """Return the app called ``name``; ``NotFound`` saying how to create it. Does not write."""
    validate_app_name(name)
    rows = list(db.query("SELECT * FROM apps WHERE name = ?", [name]))
    if not rows:
        raise _not_found(name)
    hosts = [
        row[0]
        for row in db.execute("SELECT host FROM hosts WHERE app = ? ORDER BY position", [name])
    ]
    return _from_row(rows[0], hosts)


def list_apps(db: Database, *, include_system: bool = False) -> list[AppConfig]:
    """Return the apps by name; bindrop's own (``system``) apps only when asked."""
    where = "" if include_system else "WHERE system = 0"
    hosts: dict[str, list[str]] = {}
    for r in db.query("SELECT app, host FROM hosts ORDER BY app, position"):
        hosts.setdefault(r["app"], []).append(r["host"])
    return [
        _from_row(row, hosts.get(row["name"], []))
        for row in db.query(f"SELECT * FROM apps {where} ORDER BY name")
    ]


def update_app(db: Database, name: str, changes: Mapping[str, object]) -> AppConfig:
    """Change some fields of an app and return it as stored. Does not write on error.

    ``changes`` maps ``AppConfig`` field names to new values; ``hosts`` replaces the whole
    list. ``InvalidInput`` for an unknown or read-only field (an app cannot be renamed) or a
    bad value, ``NotFound`` for a missing app or a ``current_release`` the app does not have,
    ``Conflict`` for a host another app owns. Changing nothing writes nothing (``updated_at``
    stays).
    """
    fields = {f.name for f in dataclasses.fields(AppConfig)}
    for key in changes:
        if key in _READ_ONLY:
            raise InvalidInput(f"{key} cannot be changed")
        if key not in fields:
            known = ", ".join(sorted(fields - _READ_ONLY))
            raise InvalidInput(f"unknown app setting {key!r}; settings are: {known}")
    with write_transaction(db):
        current = get_app(db, name)
        config = validate_app(dataclasses.replace(current, **changes))  # type: ignore[arg-type]
        if config == current:
            return current
        _check_hosts_free(db, config)
        _check_release_exists(db, name, config.current_release)
        row = _row(config)
        del row["name"]
        row["updated_at"] = now_text()
        assignments = ", ".join(f"{column} = ?" for column in row)
        db.execute(f"UPDATE apps SET {assignments} WHERE name = ?", [*row.values(), name])
        if "hosts" in changes:
            _write_hosts(db, config)
    return get_app(db, name)


def delete_app(db: Database, name: str) -> set[str]:
    """Delete an app with its hosts, env and releases, in one transaction.

    Returns the sha256 of each blob the app's releases used that no release references any
    more: the caller may remove those blobs. ``NotFound`` (nothing written) if there is no such
    app. Events about the app stay: they are history.
    """
    with write_transaction(db):
        require_app(db, name)
        unused = {
            row[0]
            for row in db.execute(
                """
                SELECT sha256 FROM releases WHERE app = ?
                EXCEPT SELECT sha256 FROM releases WHERE app != ?
                """,
                [name, name],
            )
        }
        db.execute("DELETE FROM apps WHERE name = ?", [name])
    return unused
