"""What an app's actor can be asked to do, and which new command makes which queued one pointless.

Commands are imperative and frozen. ``supersedes`` and ``cancels_wait`` are pure and tested
over every pair of kinds (tests/unit/test_supersede.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Start:
    """Make the app's current release run (clears a given-up crash loop)."""


@dataclass(frozen=True)
class Stop:
    """Stop every unit of the app."""


@dataclass(frozen=True)
class Restart:
    """Replace the running unit by a fresh one of the same release (zero downtime)."""


@dataclass(frozen=True)
class Deploy:
    """Put ``release`` live: start it, wait until ready, flip the route, drain, stop the old.
    ``rolling``: one instance at a time (start, ready, swap, drain, stop its old one); a
    failure midway puts the old release back on the instances already replaced."""

    release: int
    rolling: bool = False


@dataclass(frozen=True)
class Rollback:
    """Deploy an earlier release (``to``, or the one before the current) the same way."""

    to: int | None = None


@dataclass(frozen=True)
class Scale:
    """Bring the number of live instances of each process in line with the stored scale:
    start what is missing (ready first), drain and stop what is too many."""


@dataclass(frozen=True)
class Check:
    """Run the app's health check once; a failing liveness check asks for a Restart."""


class RestoreSteps(Protocol):
    """How a restore touches files: the hub's care units (``bindrop.hub.care_actions``)."""

    async def prepare(self) -> dict[str, Any]: ...
    async def swap(self, prepared: dict[str, Any]) -> dict[str, Any]: ...
    async def discard(self) -> None: ...


@dataclass(frozen=True)
class Restore:
    """Put a backup's data in place of the app's: check and extract it (nothing touched),
    stop the app, swap the data in, start it again if it ran. Waits its turn like any
    command, so a restore asked for during a deploy runs after it."""

    backup: str | None
    steps: RestoreSteps = field(compare=False, repr=False)


Command = Start | Stop | Restart | Deploy | Rollback | Check | Restore | Scale

#: For each new command kind, the queued kinds it makes pointless.
#: - Stop: whatever was queued to start, restart or check would be undone at once.
#:   It does not drop a queued Deploy or Rollback: those record which build the user wants.
#: - Start/Restart: the end state (the current release running) is the same without the
#:   queued one; a queued Stop is the user changing their mind.
#: - Deploy/Rollback: the newest requested build wins; it also starts the app, so queued
#:   starts, restarts and checks are moot.
#: - Check: only one pending check is useful.
#: - Restore: replaces data the user asked for; nothing drops it, and it drops nothing.
#: - Scale applies the stored counts, which every command that starts instances applies too:
#:   those (and Stop) make a queued Scale moot, and one queued Scale is enough.
_SUPERSEDES: dict[type[Command], frozenset[type[Command]]] = {
    Stop: frozenset({Start, Restart, Check, Stop, Scale}),
    Start: frozenset({Start, Stop, Check, Scale}),
    Restart: frozenset({Start, Stop, Restart, Check, Scale}),
    Deploy: frozenset({Deploy, Rollback, Start, Restart, Check, Scale}),
    Rollback: frozenset({Deploy, Rollback, Start, Restart, Check, Scale}),
    Check: frozenset({Check}),
    Restore: frozenset(),
    Scale: frozenset({Scale, Check}),
}

#: In-flight commands whose readiness wait a new command may cancel. Only a Stop does: waiting
#: for a release to get ready is pointless once the user wants the app stopped.
_CANCELS_WAIT: dict[type[Command], frozenset[type[Command]]] = {
    Stop: frozenset({Start, Restart, Deploy, Rollback, Check, Scale}),
}


def supersedes(new: Command, queued: Command) -> bool:
    """True if ``queued`` (not yet running) becomes pointless once ``new`` is queued."""
    return type(queued) in _SUPERSEDES.get(type(new), frozenset())


def cancels_wait(new: Command, running: Command) -> bool:
    """True if ``new`` should cancel the readiness wait of the in-flight ``running``."""
    return type(running) in _CANCELS_WAIT.get(type(new), frozenset())


def describe(command: Command) -> str:
    name = type(command).__name__.lower()
    if isinstance(command, Deploy):
        return f"{name} of release {command.release}"
    if isinstance(command, Rollback) and command.to:
        return f"{name} to release {command.to}"
    if isinstance(command, Restore) and command.backup:
        return f"{name} from {command.backup}"
    return name
