"""bindrop's async D-Bus client for systemd: manager calls, unit reads, a unit watcher.

Knows systemd, not apps: unit names and typed properties in, unit states and events out.
Every D-Bus failure leaves this package as a ``bindrop.errors.BindropError``.

    async with Bus(settings.bus_address) as bus:
        manager = Manager(bus)
        async with Watcher(bus, prefix="bindrop-") as watcher:
            await manager.start_transient_unit("bindrop-x.service", properties)
"""

from bindrop.systemd.bus import Bus
from bindrop.systemd.events import Resynced, ResyncReason, UnitChanged, UnitGone, WatchEvent
from bindrop.systemd.manager import Manager
from bindrop.systemd.paths import unit_name_from_path, unit_path
from bindrop.systemd.types import (
    ActiveState,
    JobResult,
    LoadState,
    SubState,
    UnitListing,
    UnitMetrics,
    UnitProperty,
    UnitResult,
    UnitState,
    is_given_up,
)
from bindrop.systemd.watcher import EventStream, Watcher

__all__ = [
    "ActiveState",
    "Bus",
    "EventStream",
    "JobResult",
    "LoadState",
    "Manager",
    "ResyncReason",
    "Resynced",
    "SubState",
    "UnitChanged",
    "UnitGone",
    "UnitListing",
    "UnitMetrics",
    "UnitProperty",
    "UnitResult",
    "UnitState",
    "WatchEvent",
    "Watcher",
    "is_given_up",
    "unit_name_from_path",
    "unit_path",
]
