"""Liveness: after an app is up, keep checking it; a hung app is restarted by its actor.

Off unless the app asks for it (``liveness_interval_s``). Uses the app's own health check
(HTTP path or TCP connect). A monitor runs only while the app's view is RUNNING with a
route, so a stop (which clears the route) ends it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from bindrop.hub.health import HealthCheck, probe

log = logging.getLogger(__name__)


@dataclass
class LivenessTracker:
    """Pure bookkeeping: ``failures_allowed`` failed probes in a row mean "restart"."""

    failures_allowed: int = 3
    failed_in_a_row: int = 0

    def observe(self, ok: bool) -> bool:
        """Record one probe; True exactly when the app should be restarted now."""
        if ok:
            self.failed_in_a_row = 0
            return False
        self.failed_in_a_row += 1
        if self.failed_in_a_row >= self.failures_allowed:
            self.failed_in_a_row = 0
            return True
        return False


async def watch_liveness(check: HealthCheck, port: int, *, interval: float,
                         on_hung: Callable[[str], None], failures_allowed: int = 3) -> None:
    """Probe every ``interval`` seconds until cancelled; call ``on_hung(reason)`` when hung."""
    tracker = LivenessTracker(failures_allowed)
    while True:
        await asyncio.sleep(interval)
        result = await probe(check, port)
        if tracker.observe(result.ok):
            on_hung(f"{failures_allowed} liveness checks in a row failed: {result.detail}")
