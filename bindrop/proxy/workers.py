"""Several proxy processes on the same listening sockets.

The parent keeps the listening sockets (systemd's, or its own) and forks the workers; each
accepts on all of them (the kernel gives every connection to one), runs its own
``ProxyServer`` and is its own peer of the hub, so the hub's publish and drain wait for every
worker. The parent serves nothing itself and runs no event loop (a fork is clean that way):
it restarts a worker that dies, reports ready once every worker serves, and on SIGTERM
passes the signal on and waits for every worker to finish its requests.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

#: Runs one worker in the child process, calling its argument once it serves; its exit code.
WorkerMain = Callable[[Callable[[], None]], int]

#: A slot whose worker died this many times in a row before serving makes the parent give up
#: (exit 1: systemd's Restart= takes it from there) instead of restarting forever.
MAX_EARLY_DEATHS = 5
_PR_SET_PDEATHSIG = 1


def default_workers() -> int:
    """One worker per CPU this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass
class _Slot:
    index: int
    pid: int = 0
    ready: bool = False
    started: float = 0.0
    early_deaths: int = 0
    restart_at: float | None = None


@dataclass
class WorkerPool:
    """Forks ``count`` workers running ``worker`` and keeps them running until SIGTERM or
    SIGINT. ``on_ready`` is called once, when all of them serve; ``on_stopping`` when the
    stop begins."""

    count: int
    worker: WorkerMain
    on_ready: Callable[[], object] = lambda: None
    on_stopping: Callable[[], object] = lambda: None
    restart_delay: float = 1.0
    slots: list[_Slot] = field(default_factory=list)
    stopping: bool = False
    _ready_r: int = -1
    _ready_w: int = -1
    _signal_r: int = -1
    _signal_w: int = -1

    def run(self) -> int:
        """Until every worker has exited after a stop; 0, or 1 when workers kept dying
        before they served."""
        self._ready_r, self._ready_w = os.pipe()
        self._signal_r, self._signal_w = os.pipe()
        for fd in (self._signal_r, self._signal_w, self._ready_r):
            os.set_blocking(fd, False)
        # Signals only write their number to a pipe (select wakes up); handled in the loop.
        old_wakeup = signal.set_wakeup_fd(self._signal_w)
        old_handlers = {sig: signal.signal(sig, _ignore)
                        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)}
        notified = False
        code = 0
        try:
            self.slots = [_Slot(i) for i in range(self.count)]
            for slot in self.slots:
                self._spawn(slot)
            while not self.stopping or any(slot.pid for slot in self.slots):
                readable, _, _ = select.select([self._signal_r, self._ready_r], [], [],
                                               self._next_timeout())
                if self._signal_r in readable:
                    for signum in os.read(self._signal_r, 512):
                        if signum in (signal.SIGTERM, signal.SIGINT) and not self.stopping:
                            self._stop()
                if self._ready_r in readable:
                    self._read_ready()
                if self._reap() and not self.stopping:
                    self._stop()
                    code = 1
                self._restart_due()
                if not notified and not self.stopping and all(s.ready for s in self.slots):
                    notified = True
                    self.on_ready()
            return code
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            for fd in (self._ready_r, self._ready_w, self._signal_r, self._signal_w):
                os.close(fd)

    @property
    def pids(self) -> list[int]:
        return [slot.pid for slot in self.slots if slot.pid]

    def _spawn(self, slot: _Slot) -> None:
        parent = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                self._become_worker(parent)
                ready_w = self._ready_w
                code = self.worker(lambda: _tell_ready(ready_w))
            except BaseException:
                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        slot.pid, slot.ready, slot.started, slot.restart_at = pid, False, time.monotonic(), None
        log.info("proxy worker %d started (pid %d)", slot.index, pid)

    def _become_worker(self, parent: int) -> None:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        for fd in (self._ready_r, self._signal_r, self._signal_w):
            os.close(fd)
        _die_with_parent()
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    def _read_ready(self) -> None:
        try:
            data = os.read(self._ready_r, 4096)
        except BlockingIOError:
            return
        for line in data.split():
            pid = int(line)
            for slot in self.slots:
                if slot.pid == pid:
                    slot.ready = True
                    slot.early_deaths = 0

    def _reap(self) -> bool:
        """Collect exited workers, scheduling restarts; True when one slot's workers keep
        dying before they serve."""
        give_up = False
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            slot = next((s for s in self.slots if s.pid == pid), None)
            if slot is None:
                continue
            slot.pid = 0
            if self.stopping:
                continue
            log.warning("proxy worker %d (pid %d) %s; starting another", slot.index, pid,
                        _describe(status))
            if not slot.ready:
                slot.early_deaths += 1
                give_up = give_up or slot.early_deaths >= MAX_EARLY_DEATHS
            slot.ready = False
            # A worker that dies at once must not be restarted in a tight loop.
            slot.restart_at = max(time.monotonic(), slot.started + self.restart_delay)
        if give_up:
            log.error("proxy workers keep dying before they serve; giving up")
        return give_up

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if not self.stopping and slot.restart_at is not None and slot.restart_at <= now:
                self._spawn(slot)

    def _next_timeout(self) -> float | None:
        due = [s.restart_at for s in self.slots if s.restart_at is not None]
        return max(0.0, min(due) - time.monotonic()) if due and not self.stopping else None

    def _stop(self) -> None:
        self.stopping = True
        self.on_stopping()
        for slot in self.slots:
            slot.restart_at = None
            if slot.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGTERM)


def _ignore(signum: int, frame: object) -> None:
    """The wakeup fd carries the signal to the loop."""


def _tell_ready(fd: int) -> None:
    os.write(fd, f"{os.getpid()}\n".encode())  # under PIPE_BUF: one atomic write


def _die_with_parent() -> None:
    """Have the kernel send SIGTERM to this worker when the parent dies (Linux), so a killed
    parent leaves no worker behind holding the sockets."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
