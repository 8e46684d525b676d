"""Values read from systemd: state enums, unit state, listings, metrics.

Enums mirror systemd's strings and tolerate new ones: a value this code has never heard of
(a newer systemd) becomes a pseudo-member carrying the string verbatim instead of raising.
Names of fields follow systemd's D-Bus property names in snake case.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, Self

UINT64_MAX = 2**64 - 1


class SystemdStrEnum(StrEnum):
    """A str enum that accepts any string: unknown values become pseudo-members."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value.upper().replace("-", "_")
        member._value_ = value
        return member


class ActiveState(SystemdStrEnum):
    ACTIVE = "active"
    RELOADING = "reloading"
    INACTIVE = "inactive"
    FAILED = "failed"
    ACTIVATING = "activating"
    DEACTIVATING = "deactivating"
    MAINTENANCE = "maintenance"


class LoadState(SystemdStrEnum):
    STUB = "stub"
    LOADED = "loaded"
    NOT_FOUND = "not-found"
    BAD_SETTING = "bad-setting"
    ERROR = "error"
    MERGED = "merged"
    MASKED = "masked"


class SubState(SystemdStrEnum):
    """Sub-states of services and timers (other unit types arrive as pseudo-members)."""

    DEAD = "dead"
    CONDITION = "condition"
    START_PRE = "start-pre"
    START = "start"
    START_POST = "start-post"
    RUNNING = "running"
    EXITED = "exited"
    RELOAD = "reload"
    STOP = "stop"
    STOP_WATCHDOG = "stop-watchdog"
    STOP_SIGTERM = "stop-sigterm"
    STOP_SIGKILL = "stop-sigkill"
    STOP_POST = "stop-post"
    FINAL_WATCHDOG = "final-watchdog"
    FINAL_SIGTERM = "final-sigterm"
    FINAL_SIGKILL = "final-sigkill"
    FAILED = "failed"
    AUTO_RESTART = "auto-restart"
    CLEANING = "cleaning"
    WAITING = "waiting"
    ELAPSED = "elapsed"


class UnitResult(SystemdStrEnum):
    """The ``Result`` property of a service (timers and sockets share most values)."""

    SUCCESS = "success"
    PROTOCOL = "protocol"
    TIMEOUT = "timeout"
    EXIT_CODE = "exit-code"
    SIGNAL = "signal"
    CORE_DUMP = "core-dump"
    WATCHDOG = "watchdog"
    START_LIMIT_HIT = "start-limit-hit"
    RESOURCES = "resources"
    OOM_KILL = "oom-kill"
    SKIP_CONDITION = "skip-condition"
    EXEC_CONDITION = "exec-condition"


class JobResult(SystemdStrEnum):
    """The result string of ``JobRemoved``."""

    DONE = "done"
    CANCELED = "canceled"
    TIMEOUT = "timeout"
    FAILED = "failed"
    DEPENDENCY = "dependency"
    SKIPPED = "skipped"
    INVALID = "invalid"
    ASSERT = "assert"
    UNSUPPORTED = "unsupported"
    COLLECTED = "collected"
    ONCE = "once"


# ExecMainCode is a siginfo si_code.
CLD_EXITED = 1
CLD_KILLED = 2
CLD_DUMPED = 3


class UnitProperty(Protocol):
    """One transient-unit property as ``bindrop.units`` builds it (duck-typed here).

    ``value`` is in the shape ``dbus_fast.Variant(signature, value)`` accepts (tuples are
    accepted where a list is due).
    """

    @property
    def name(self) -> str: ...

    @property
    def signature(self) -> str: ...

    @property
    def value(self) -> object: ...


@dataclass(frozen=True)
class UnitState:
    """What systemd says about one unit, as last seen by a watcher.

    ``main_pid`` 0 means no main process; ``job_id`` 0 means no job is queued or running.
    Timestamps are systemd's microseconds since the epoch (0 = never);
    ``state_change_monotonic`` is ``StateChangeTimestampMonotonic``, used to order readings.
    PIDs are in systemd's PID namespace.
    """

    name: str
    load_state: LoadState = LoadState.LOADED
    active_state: ActiveState = ActiveState.INACTIVE
    sub_state: SubState = SubState.DEAD
    main_pid: int = 0
    result: UnitResult = UnitResult.SUCCESS
    n_restarts: int = 0
    exec_main_status: int = 0
    exec_main_code: int = 0
    job_id: int = 0
    active_enter_timestamp: int = 0
    inactive_enter_timestamp: int = 0
    state_change_timestamp: int = 0
    state_change_monotonic: int = 0

    @property
    def has_job(self) -> bool:
        return self.job_id != 0


def is_given_up(state: UnitState, has_job: bool | None = None) -> bool:
    """True when systemd has stopped trying to run the unit: failed, no job, no auto-restart.

    On systemd 252 the start limit keeps ``Result`` at the previous reason (``exit-code``), not
    ``start-limit-hit``, so the result cannot tell (systemd-lab.md). ``has_job`` defaults to
    the state's own ``Job`` property.

    A crash under ``Restart=`` emits ``failed`` and then ``activating/auto-restart`` in the same
    millisecond, so a single ``failed`` reading satisfies this for an instant: judge the
    watcher's *latest* state (``Watcher.get``) rather than an old event's ``new``.
    """
    if has_job is None:
        has_job = state.has_job
    return (
        state.active_state == ActiveState.FAILED
        and not has_job
        and state.sub_state != SubState.AUTO_RESTART
    )


@dataclass(frozen=True)
class UnitListing:
    """One row of ``ListUnitsByPatterns``."""

    name: str
    description: str
    load_state: LoadState
    active_state: ActiveState
    sub_state: SubState
    path: str
    job_id: int


@dataclass(frozen=True)
class UnitMetrics:
    """Counters systemd never pushes, read on demand; None where systemd has no value."""

    memory_current: int | None
    tasks_current: int | None
    cpu_usage_nsec: int | None


def counter_or_none(value: object) -> int | None:
    """systemd reports an unavailable counter as UINT64_MAX; that (or a non-int) is None."""
    if not isinstance(value, int) or isinstance(value, bool) or value == UINT64_MAX:
        return None
    return value


def parse_unit_listing(rows: list[Any]) -> list[UnitListing]:
    """The rows of a ``ListUnitsByPatterns``/``ListUnits`` reply (``a(ssssssouso)``)."""
    listings: list[UnitListing] = []
    for row in rows:
        name, description, load, active, sub, _following, path, job_id, _job_type, _job = row
        listings.append(
            UnitListing(
                name=name,
                description=description,
                load_state=LoadState(load),
                active_state=ActiveState(active),
                sub_state=SubState(sub),
                path=path,
                job_id=job_id,
            )
        )
    return listings
