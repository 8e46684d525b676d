"""The one typed table of the systemd properties bindrop sets, and the values built from it.

Every property bindrop sends to ``StartTransientUnit`` is a ``Property`` whose signature comes
from ``PROPERTY_SIGNATURES`` and whose value has been checked against it. systemd answers a
wrong Variant type with ``ENXIO`` naming no property, and a name it does not know with
``PropertyReadOnly``; both are caught here instead, by name. Names are systemd's D-Bus names
verbatim (``RestartUSec``, not ``RestartSec``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from bindrop.units.signature import conform

PROPERTY_SIGNATURES: Mapping[str, str] = MappingProxyType(
    {
        # org.freedesktop.systemd1.Unit
        "Description": "s",
        "CollectMode": "s",
        "StartLimitIntervalUSec": "t",
        "StartLimitBurst": "u",
        # org.freedesktop.systemd1.Service
        "Type": "s",
        "ExecStart": "a(sasb)",
        "Restart": "s",
        "RestartUSec": "t",
        "TimeoutStopUSec": "t",
        "TimeoutStartUSec": "t",
        "SuccessExitStatus": "(aiai)",
        "KillSignal": "i",
        "RemainAfterExit": "b",
        # exec context
        "WorkingDirectory": "s",
        "Environment": "as",
        "User": "s",
        "DynamicUser": "b",
        "StateDirectory": "as",
        "SyslogIdentifier": "s",
        "LogExtraFields": "aay",
        "ProtectSystem": "s",
        "ProtectHome": "s",
        "BindReadOnlyPaths": "a(ssbt)",
        "PrivateTmp": "b",
        "NoNewPrivileges": "b",
        "Nice": "i",
        "IOSchedulingClass": "i",
        # a bit mask of the namespace types still allowed, not a boolean
        "RestrictNamespaces": "t",
        # cgroup context
        "Slice": "s",
        "CPUAccounting": "b",
        "MemoryAccounting": "b",
        "MemoryMax": "t",
        "CPUQuotaPerSecUSec": "t",
        "TasksMax": "t",
        # org.freedesktop.systemd1.Timer (app cron jobs)
        "TimersCalendar": "a(ss)",
        "AccuracyUSec": "t",
        "Persistent": "b",
        "RemainAfterElapse": "b",
    }
)


@dataclass(frozen=True)
class Property:
    """One transient-unit property: systemd name, D-Bus signature, value.

    The constructor refuses a name missing from ``PROPERTY_SIGNATURES``, a signature other than
    the table's, and a value that does not fit the signature (``ValueError``: these are bugs in
    bindrop, not bad input). ``value`` is stored in the shape ``dbus_fast.Variant(signature,
    value)`` accepts: lists for arrays, tuples for structs, bytes for ``ay``. Not hashable when
    the value holds a list. Unpacks as ``name, signature, value = prop``.
    """

    name: str
    signature: str
    value: object

    def __post_init__(self) -> None:
        expected = PROPERTY_SIGNATURES.get(self.name)
        if expected is None:
            raise ValueError(
                f"unknown property {self.name!r}: add it with its D-Bus signature to "
                "PROPERTY_SIGNATURES in bindrop/units/properties.py"
            )
        if self.signature != expected:
            raise ValueError(
                f"property {self.name} has signature {expected!r}, not {self.signature!r}"
            )
        try:
            value = conform(expected, self.value)
        except ValueError as e:
            raise ValueError(f"property {self.name} ({expected}): {e}") from None
        object.__setattr__(self, "value", value)

    def __iter__(self) -> Iterator[object]:
        return iter((self.name, self.signature, self.value))


def prop(name: str, value: object) -> Property:
    """Build a ``Property`` taking its signature from the table (``ValueError`` if unknown)."""
    signature = PROPERTY_SIGNATURES.get(name)
    if signature is None:
        # Property() words the error for an unknown name.
        signature = ""
    return Property(name, signature, value)


@dataclass(frozen=True)
class UnitSpec:
    """A transient unit to create: its name and its properties in a stable order.

    Property names are unique (``ValueError`` otherwise).
    """

    name: str
    properties: tuple[Property, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "properties", tuple(self.properties))
        seen: set[str] = set()
        for p in self.properties:
            if p.name in seen:
                raise ValueError(f"unit {self.name}: property {p.name} given twice")
            seen.add(p.name)

    def get(self, name: str) -> object:
        """Return the value of property ``name`` (``KeyError`` if the unit does not set it)."""
        for p in self.properties:
            if p.name == name:
                return p.value
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.properties)
