"""The proxy's worker pool with trivial workers (forked from the test process)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from bindrop.proxy.workers import MAX_EARLY_DEATHS, WorkerPool


def test_workers_that_keep_dying_before_they_serve_make_the_parent_give_up() -> None:
    def worker(ready: Callable[[], None]) -> int:
        return 3

    pool = WorkerPool(2, worker, restart_delay=0.01)
    started = time.monotonic()
    assert pool.run() == 1
    assert time.monotonic() - started < 20
    assert max(slot.early_deaths for slot in pool.slots) >= MAX_EARLY_DEATHS


def test_ready_comes_once_all_workers_serve_and_a_stop_ends_them() -> None:
    events: list[str] = []

    def worker(ready: Callable[[], None]) -> int:
        ready()
        time.sleep(60)  # SIGTERM (default action in a worker without a loop) ends it
        return 0

    def on_ready() -> None:
        events.append(f"ready with {len(pool.pids)} workers")
        os.kill(os.getpid(), signal.SIGTERM)  # as systemctl stop would

    pool = WorkerPool(3, worker, on_ready=on_ready,
                      on_stopping=lambda: events.append("stopping"))
    assert pool.run() == 0
    assert events == ["ready with 3 workers", "stopping"]
    assert pool.pids == []
