"""What a watcher tells its subscribers, in the order systemd said it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from bindrop.systemd.types import UnitState


class ResyncReason(StrEnum):
    START = "start"
    """The first snapshot: of the watcher, or the view a newly opened event stream starts from."""
    RECONNECT = "reconnect"
    """The bus connection was lost and re-made: anything may have happened meanwhile."""
    SYSTEMD_RESTART = "systemd-restart"
    """systemd re-appeared on the bus (daemon-reexec, or a new instance)."""


@dataclass(frozen=True)
class UnitChanged:
    """A unit's state changed. ``old`` is None for a unit seen for the first time."""

    old: UnitState | None
    new: UnitState

    @property
    def name(self) -> str:
        return self.new.name


@dataclass(frozen=True)
class UnitGone:
    """systemd removed the unit (it is no longer loaded). ``last`` is its final state."""

    last: UnitState

    @property
    def name(self) -> str:
        return self.last.name


@dataclass(frozen=True)
class Resynced:
    """The whole view was read again; replace any view built from earlier events.

    Events after this one are changes relative to ``snapshot``. Units missing from it are
    gone, even though no ``UnitGone`` was delivered for them.
    """

    snapshot: Mapping[str, UnitState]
    reason: ResyncReason


WatchEvent = UnitChanged | UnitGone | Resynced
