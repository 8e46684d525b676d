"""Waiting for systemd jobs, and explaining the ones that fail.

A job is matched by the object path the method reply names. The reply and the job's
``JobRemoved`` may arrive in the same socket read, and dbus-fast dispatches that signal before
``await bus.call()`` returns (systemd-lab.md: an instant job's JobRemoved was "lost" 18 times
in 20). So the waiter exists before the call is sent, the reply's job path is claimed by an
``in_order`` hook in the same ordered handler that sees ``JobRemoved``, and a ``JobRemoved``
nobody has claimed yet is kept for a while in case its reply is still on the way.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from dbus_fast import Message

from bindrop.errors import BindropError, BusUnavailable, JobFailed, SystemdError
from bindrop.systemd.bus import MANAGER_IFACE, PROPERTIES_IFACE, Bus
from bindrop.systemd.paths import unit_path
from bindrop.systemd.types import (
    CLD_DUMPED,
    CLD_EXITED,
    CLD_KILLED,
    JobResult,
    UnitResult,
    UnitState,
)
from bindrop.systemd.variants import unwrap_properties

_KEEP_UNCLAIMED = 256

# systemd's own exit statuses for a process that never reached the binary
# (systemd.exec(5), "Process Exit Codes"), with what a person can do about them.
EXIT_STATUS_HINTS: Mapping[int, tuple[str, str]] = {
    200: ("CHDIR", "the WorkingDirectory does not exist or is not accessible"),
    203: ("EXEC", "the binary could not be executed: check that it exists and is executable"),
    204: ("MEMORY", "systemd ran out of memory setting up the process"),
    209: ("STDOUT", "standard output could not be set up"),
    214: ("SETSCHEDULER", "the scheduling policy could not be set"),
    216: ("GROUP", "the group does not exist"),
    217: ("USER", "the user does not exist"),
    218: ("CAPABILITIES", "capabilities could not be set"),
    219: ("CGROUP", "the control group could not be set up"),
    226: ("NAMESPACE", "the sandbox could not be set up: a path it needs may be missing"),
    227: ("NO_NEW_PRIVILEGES", "NoNewPrivileges could not be set"),
    228: ("SECCOMP", "the system call filter could not be set"),
    233: ("RUNTIME_DIRECTORY", "the RuntimeDirectory could not be created"),
    238: ("STATE_DIRECTORY", "the StateDirectory could not be created"),
    243: ("CREDENTIALS", "credentials could not be set up"),
}

_JOB_RESULT_HINTS: Mapping[str, str] = {
    JobResult.CANCELED: "the job was canceled (a later start or stop of the unit replaced it)",
    JobResult.TIMEOUT: "the job timed out",
    JobResult.FAILED: "the unit failed",
    JobResult.DEPENDENCY: "a unit it depends on failed",
    JobResult.SKIPPED: "the job was skipped: the unit was not in a state to which it applies",
    JobResult.INVALID: "the job does not apply to the unit in its current state",
    JobResult.ASSERT: "an Assert... condition of the unit failed",
    JobResult.UNSUPPORTED: "the unit type does not support this operation",
    JobResult.COLLECTED: "the job was garbage-collected before it ran",
    JobResult.ONCE: "the unit may only be started once (its state is final)",
}

_UNIT_RESULT_HINTS: Mapping[str, str] = {
    UnitResult.TIMEOUT: "it did not finish in time (TimeoutStartSec/TimeoutStopSec)",
    UnitResult.CORE_DUMP: "its main process dumped core",
    UnitResult.WATCHDOG: "its watchdog expired",
    UnitResult.START_LIMIT_HIT: "it was started too often (StartLimitBurst); reset-failed it "
    "before starting again",
    UnitResult.RESOURCES: "systemd could not set up what it needs (a directory, user, socket "
    "or cgroup)",
    UnitResult.OOM_KILL: "it was killed for running out of memory (MemoryMax)",
    UnitResult.PROTOCOL: "it broke the service protocol of its Type= (e.g. no READY=1)",
    UnitResult.EXEC_CONDITION: "its ExecCondition= refused to start it",
}


_EXIT_RESULTS = (UnitResult.EXIT_CODE, UnitResult.SIGNAL, UnitResult.CORE_DUMP)


def describe_exit(code: int, status: int, *, hint: bool = True) -> str | None:
    """How a main process ended (``ExecMainCode``/``ExecMainStatus``), in words: "exited with
    status 1", "was killed by signal 9"; None if there was no exit yet. ``hint``: systemd's own
    statuses are named and explained ("exited with status 203/EXEC (the binary could not…)")."""
    if code == CLD_EXITED:
        named = EXIT_STATUS_HINTS.get(status) if hint else None
        if named:
            return f"exited with status {status}/{named[0]} ({named[1]})"
        return f"exited with status {status}"
    if code in (CLD_KILLED, CLD_DUMPED):
        return f"was killed by signal {status}"
    return None


def describe_unit_exit(state: UnitState) -> str:
    """systemd's last word on a unit's main process, for a person (the hub's app states):
    how it ended, or the unit's ``Result``, and after how many restarts."""
    how = (describe_exit(state.exec_main_code, state.exec_main_status, hint=False)
           or f"ended ({state.result})")
    restarts = f" after {state.n_restarts} restarts" if state.n_restarts else ""
    return f"{how}{restarts}"


def describe_job_failure(
    verb: str, unit: str, job_result: str, unit_props: Mapping[str, Any]
) -> str:
    """A message a person can act on, for a ``verb`` job of ``unit`` that ended other than
    "done". ``unit_props`` holds whatever was read about the unit (``Result``,
    ``ExecMainCode``, ``ExecMainStatus``); it may be empty."""
    reasons: list[str] = [_JOB_RESULT_HINTS.get(job_result, f"the job ended with {job_result!r}")]
    result = unit_props.get("Result")
    code, status = unit_props.get("ExecMainCode"), unit_props.get("ExecMainStatus")
    exit_text = None
    if isinstance(code, int) and isinstance(status, int):
        how = describe_exit(code, status)
        exit_text = f"its main process {how}" if how else None
    if result in _EXIT_RESULTS or result is None:
        # The exit status says more than "exit-code"/"signal" would.
        if exit_text:
            reasons.append(exit_text)
        elif isinstance(result, str):
            reasons.append(f"its Result is {result!r}")
    elif isinstance(result, str) and result != UnitResult.SUCCESS:
        reasons.append(_UNIT_RESULT_HINTS.get(result, f"its Result is {result!r}"))
    return (
        f"{verb} of {unit} failed: {'; '.join(reasons)}. "
        f"See `journalctl -u {unit}` and `systemctl status {unit}`."
    )


class JobWaiter:
    """One job this process is about to ask for, from before the call until it ends."""

    def __init__(self, tracker: JobTracker, unit: str) -> None:
        self.unit = unit
        self.unit_path = unit_path(unit)
        self.job_path: str | None = None
        # Unit/Service properties of the unit pushed while the job ran: with
        # CollectMode=inactive-or-failed a failed unit is gone by the time anyone could ask.
        self.seen: dict[str, Any] = {}
        self._tracker = tracker
        self._done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_reply(self, body: list[Any]) -> None:
        """The ``in_order`` hook for the call that creates the job (its reply is ``o job``)."""
        path = body[0] if body and isinstance(body[0], str) else None
        self._tracker._claim(self, path)

    async def wait(self) -> str:
        """The job's result string. Cancelling the wait does not cancel the job."""
        return await self._done

    def close(self) -> None:
        self._tracker._release(self)
        if not self._done.done():
            self._done.cancel()

    def _finish(self, result: str) -> None:
        if not self._done.done():
            self._done.set_result(result)

    def _fail(self, error: BindropError) -> None:
        if not self._done.done():
            self._done.set_exception(error)
            self._done.exception()  # retrieved: nobody may be awaiting any more


class JobTracker:
    """Matches ``JobRemoved`` signals to the jobs of this process's calls."""

    def __init__(self, bus: Bus) -> None:
        self._waiters: set[JobWaiter] = set()
        self._by_path: dict[str, JobWaiter] = {}
        # Indexed by unit path: during a restart of hundreds of units every signal would
        # otherwise walk every waiter (bench/hub.py).
        self._by_unit_path: dict[str, set[JobWaiter]] = {}
        self._unclaimed: OrderedDict[str, str] = OrderedDict()
        self._unsubscribe = (
            bus.add_signal_listener(self._on_signal),
            bus.add_lost_listener(self._on_lost),
        )

    def expect(self, unit: str) -> JobWaiter:
        """A waiter for a job on ``unit``; create it before sending the call."""
        waiter = JobWaiter(self, unit)
        self._waiters.add(waiter)
        self._by_unit_path.setdefault(waiter.unit_path, set()).add(waiter)
        return waiter

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._on_lost(SystemdError("stopped waiting for systemd jobs: the client was closed"))

    def _claim(self, waiter: JobWaiter, path: str | None) -> None:
        if waiter not in self._waiters:
            return
        if path is None:
            waiter._fail(SystemdError(f"systemd named no job for {waiter.unit}"))
            return
        result = self._unclaimed.pop(path, None)
        if result is not None:
            waiter._finish(result)
            return
        waiter.job_path = path
        self._by_path[path] = waiter

    def _release(self, waiter: JobWaiter) -> None:
        self._waiters.discard(waiter)
        same_unit = self._by_unit_path.get(waiter.unit_path)
        if same_unit is not None:
            same_unit.discard(waiter)
            if not same_unit:
                del self._by_unit_path[waiter.unit_path]
        if waiter.job_path is not None and self._by_path.get(waiter.job_path) is waiter:
            del self._by_path[waiter.job_path]

    def _on_signal(self, msg: Message) -> None:
        if msg.member == "JobRemoved" and msg.interface == MANAGER_IFACE:
            _job_id, path, _unit, result = msg.body
            waiter = self._by_path.pop(path, None)
            if waiter is not None:
                waiter._finish(result)
            elif any(w.job_path is None for w in self._waiters):
                # Its reply may still be on the way; keep the result for _claim.
                self._unclaimed[path] = result
                while len(self._unclaimed) > _KEEP_UNCLAIMED:
                    self._unclaimed.popitem(last=False)
        elif msg.member == "PropertiesChanged" and msg.interface == PROPERTIES_IFACE:
            for waiter in self._by_unit_path.get(msg.path or "", ()):
                waiter.seen.update(unwrap_properties(msg.body[1]))

    def _on_lost(self, error: BindropError) -> None:
        # The job may well go on in systemd; only our view of it is lost.
        cls = BusUnavailable if isinstance(error, BusUnavailable) else SystemdError
        for waiter in tuple(self._waiters):
            waiter._fail(
                cls(
                    f"{error.message}; the job on {waiter.unit} may still be running: check "
                    f"`systemctl status {waiter.unit}`"
                )
            )


def job_failed(verb: str, unit: str, job_result: str, unit_props: Mapping[str, Any]) -> JobFailed:
    """The ``JobFailed`` for a job that ended with ``job_result``."""
    return JobFailed(
        describe_job_failure(verb, unit, job_result, unit_props), unit=unit, result=job_result
    )
