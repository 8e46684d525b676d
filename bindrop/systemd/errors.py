"""The one place where D-Bus errors become bindrop errors.

Errors are matched by their D-Bus error name, never by message text. ``action`` is what
bindrop tried, phrased to follow "cannot": ``"start bindrop-x.service"``.
"""

from __future__ import annotations

from dbus_fast import Message, MessageType
from dbus_fast.errors import DBusError

from bindrop.errors import (
    BindropError,
    BusUnavailable,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    SystemdError,
    UnitExists,
)

_SD = "org.freedesktop.systemd1."
_DBUS = "org.freedesktop.DBus.Error."

_BY_NAME: dict[str, tuple[type[BindropError], str]] = {
    _SD + "NoSuchUnit": (NotFound, "systemd has no such unit loaded"),
    _SD + "NoSuchJob": (NotFound, "the job is already gone"),
    _SD + "NoSuchProcess": (NotFound, "the unit has no process to signal"),
    _SD + "UnitExists": (
        UnitExists,
        "a unit of that name is still loaded (failed or still stopping): stop it and "
        "reset-failed it, or use a fresh name",
    ),
    _SD + "UnitMasked": (Conflict, "the unit is masked: unmask it first"),
    _SD + "UnitInactive": (Conflict, "the unit is not active"),
    _SD + "JobTypeNotApplicable": (Conflict, "that operation does not apply to this unit"),
    _SD + "OnlyByDependency": (Conflict, "the unit may only be started as a dependency"),
    _SD + "TransactionIsDestructive": (Conflict, "it would undo a job already queued"),
    _SD + "TransactionJobsConflicting": (Conflict, "it conflicts with queued jobs"),
    _SD + "TransactionOrderIsCyclic": (Conflict, "the unit's ordering dependencies form a cycle"),
    _SD + "ShuttingDown": (Conflict, "systemd is shutting down"),
    _SD + "LoadFailed": (InvalidInput, "systemd could not load the unit's settings"),
    _SD + "BadUnitSetting": (InvalidInput, "a unit setting is invalid"),
    _DBUS + "PropertyReadOnly": (
        InvalidInput,
        "a property is unknown to this systemd version or may not be set on a transient "
        "unit; check the property table in bindrop.units",
    ),
    _DBUS + "InvalidArgs": (InvalidInput, "systemd rejected the arguments"),
    # systemd-lab.md: a Variant of the wrong type fails with ENXIO naming no property.
    "System.Error.ENXIO": (
        InvalidInput,
        "a unit property has the wrong D-Bus type for this systemd; check the signatures "
        "in the property table in bindrop.units",
    ),
    _DBUS + "AccessDenied": (
        Forbidden,
        "systemd refused: managing units needs root (or polkit manage-units)",
    ),
    _DBUS + "InteractiveAuthorizationRequired": (
        Forbidden,
        "systemd refused: managing units needs root (or polkit manage-units)",
    ),
    "System.Error.EPERM": (Forbidden, "systemd refused: operation not permitted"),
    "System.Error.EACCES": (Forbidden, "systemd refused: permission denied"),
    _DBUS + "ServiceUnknown": (BusUnavailable, "systemd is not on the bus (yet)"),
    _DBUS + "NameHasNoOwner": (BusUnavailable, "systemd is not on the bus (yet)"),
    _DBUS + "NoReply": (BusUnavailable, "systemd did not answer"),
    _DBUS + "Disconnected": (BusUnavailable, "the bus connection is closed"),
    _DBUS + "Timeout": (BusUnavailable, "the bus timed out"),
    _DBUS + "TimedOut": (BusUnavailable, "the bus timed out"),
    _DBUS + "LimitsExceeded": (SystemdError, "too many requests in flight on the bus"),
}


_SPAWN_PREFIX = _DBUS + "Spawn."


def error_from_dbus(name: str, text: str, *, action: str) -> BindropError:
    """The bindrop error for a D-Bus error ``name`` with systemd's ``text``."""
    cls: type[BindropError]
    if name.startswith(_SPAWN_PREFIX):
        # Nobody owns org.freedesktop.systemd1 and the bus failed to activate it.
        cls, hint = BusUnavailable, "systemd is not on the bus and could not be started"
    else:
        cls, hint = _BY_NAME.get(name, (SystemdError, ""))
    detail = f"{text.rstrip('.')} ({name})" if text else name
    if hint:
        return cls(f"cannot {action}: {hint}. systemd said: {detail}")
    return cls(f"cannot {action}: systemd said: {detail}")


def error_from_reply(reply: Message, *, action: str) -> BindropError:
    """The bindrop error for an ERROR message (``bus.call`` returns these, never raises)."""
    if reply.message_type is not MessageType.ERROR:
        return SystemdError(f"cannot {action}: unexpected reply of type {reply.message_type}")
    text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
    return error_from_dbus(reply.error_name or "unknown", text, action=action)


def error_from_exception(exc: BaseException, *, action: str) -> BindropError:
    """The bindrop error for an exception dbus-fast raised while calling or connecting.

    A ``DBusError`` is translated by name; anything else (EOF, OSError, a dropped connection,
    an auth failure) means the bus is not usable.
    """
    if isinstance(exc, BindropError):
        return exc
    if isinstance(exc, DBusError):
        return error_from_dbus(exc.type, exc.text, action=action)
    if isinstance(exc, TimeoutError):
        return BusUnavailable(f"cannot {action}: timed out reaching the system bus")
    reason = str(exc) or type(exc).__name__
    return BusUnavailable(
        f"cannot {action}: no usable connection to the system bus ({reason}); "
        "is dbus running and is the bus address right?"
    )
