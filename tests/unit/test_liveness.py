"""Liveness bookkeeping, and the watcher loop against a real socket that stops answering."""

from __future__ import annotations

import asyncio

import pytest

from bindrop.hub.health import HealthCheck
from bindrop.hub.liveness import LivenessTracker, watch_liveness


@pytest.mark.parametrize(("probes", "restarts"), [
    ([True, True, True], []),
    ([False, False, False], [2]),
    ([False, False, True, False, False], []),
    ([False] * 6, [2, 5]),
])
def test_only_enough_failures_in_a_row_ask_for_a_restart(probes: list[bool],
                                                         restarts: list[int]) -> None:
    tracker = LivenessTracker(failures_allowed=3)
    assert [i for i, ok in enumerate(probes) if tracker.observe(ok)] == restarts


async def test_a_port_that_stops_answering_is_reported_hung() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hung: list[str] = []
    watcher = asyncio.create_task(watch_liveness(
        HealthCheck(attempt_timeout=0.5), port, interval=0.02, on_hung=hung.append,
        failures_allowed=2))
    await asyncio.sleep(0.2)
    assert hung == []
    server.close()
    await server.wait_closed()
    async with asyncio.timeout(10):
        while not hung:
            await asyncio.sleep(0.02)
    watcher.cancel()
    assert "2 liveness checks in a row failed" in hung[0] and "refused" in hung[0]
