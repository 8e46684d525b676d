"""D-Bus errors become bindrop errors by name, in one place."""

from __future__ import annotations

import pytest
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
from bindrop.systemd.errors import error_from_dbus, error_from_exception, error_from_reply

TABLE: list[tuple[str, type[BindropError]]] = [
    ("org.freedesktop.systemd1.NoSuchUnit", NotFound),
    ("org.freedesktop.systemd1.NoSuchJob", NotFound),
    ("org.freedesktop.systemd1.NoSuchProcess", NotFound),
    ("org.freedesktop.systemd1.UnitExists", UnitExists),
    ("org.freedesktop.systemd1.UnitMasked", Conflict),
    ("org.freedesktop.systemd1.JobTypeNotApplicable", Conflict),
    ("org.freedesktop.systemd1.TransactionIsDestructive", Conflict),
    ("org.freedesktop.DBus.Error.PropertyReadOnly", InvalidInput),
    ("org.freedesktop.DBus.Error.InvalidArgs", InvalidInput),
    ("System.Error.ENXIO", InvalidInput),
    ("org.freedesktop.DBus.Error.AccessDenied", Forbidden),
    ("org.freedesktop.DBus.Error.InteractiveAuthorizationRequired", Forbidden),
    ("System.Error.EPERM", Forbidden),
    ("org.freedesktop.DBus.Error.ServiceUnknown", BusUnavailable),
    ("org.freedesktop.DBus.Error.NoReply", BusUnavailable),
    ("org.freedesktop.DBus.Error.Disconnected", BusUnavailable),
    ("org.freedesktop.DBus.Error.Spawn.ChildExited", BusUnavailable),
    ("org.freedesktop.systemd1.SomethingNew", SystemdError),
    ("System.Error.EIO", SystemdError),
]


@pytest.mark.parametrize(("name", "cls"), TABLE)
def test_error_name_maps_to_bindrop_class(name: str, cls: type[BindropError]) -> None:
    error = error_from_dbus(name, "systemd's words.", action="start bindrop-x.service")
    assert type(error) is cls


def test_message_says_what_failed_and_keeps_systemds_words_and_name() -> None:
    error = error_from_dbus(
        "org.freedesktop.systemd1.UnitExists",
        "Unit bindrop-x.service was already loaded or has a fragment file.",
        action="start bindrop-x.service",
    )
    assert error.message.startswith("cannot start bindrop-x.service: ")
    assert "reset-failed" in error.message  # what to do next
    assert "already loaded" in error.message
    assert "org.freedesktop.systemd1.UnitExists" in error.message
    assert error.code == "unit_exists" and error.status == 409


def test_unknown_property_error_points_at_the_property_table() -> None:
    error = error_from_dbus(
        "org.freedesktop.DBus.Error.PropertyReadOnly",
        "Cannot set property RestartSteps, or unknown property.",
        action="start bindrop-x.service",
    )
    assert "RestartSteps" in error.message and "bindrop.units" in error.message


def test_error_reply_message_is_translated() -> None:
    call = Message(destination="org.freedesktop.systemd1", path="/org/freedesktop/systemd1",
                   interface="org.freedesktop.systemd1.Manager", member="StopUnit", serial=7)
    reply = Message.new_error(call, "org.freedesktop.systemd1.NoSuchUnit", "Unit x not loaded.")
    assert reply.message_type is MessageType.ERROR
    error = error_from_reply(reply, action="stop x")
    assert isinstance(error, NotFound)
    assert "Unit x not loaded" in error.message


def test_dbus_error_exception_is_translated_by_name() -> None:
    exc = DBusError("org.freedesktop.DBus.Error.AccessDenied", "Access denied")
    assert isinstance(error_from_exception(exc, action="stop x"), Forbidden)


@pytest.mark.parametrize("exc", [EOFError(), ConnectionRefusedError(111, "refused"),
                                 FileNotFoundError(2, "No such file"), TimeoutError()])
def test_connection_failures_are_bus_unavailable(exc: Exception) -> None:
    error = error_from_exception(exc, action="connect to the system bus")
    assert isinstance(error, BusUnavailable)
    assert error.status == 503


def test_a_bindrop_error_passes_through() -> None:
    original = NotFound("gone")
    assert error_from_exception(original, action="x") is original
