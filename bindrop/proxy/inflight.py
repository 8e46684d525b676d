"""Requests in flight per upstream unit: what a drain waits on."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping


class InFlight:
    """Counts requests per unit; ``wait_idle(unit)`` returns once the unit has none."""

    def __init__(self) -> None:
        # A plain dict: Counter's __missing__ is a Python call, and every unit that goes
        # idle is deleted, so the next request would pay it.
        self._counts: dict[str, int] = {}
        self._idle: dict[str, asyncio.Event] = {}

    def enter(self, unit: str) -> None:
        self._counts[unit] = self._counts.get(unit, 0) + 1

    def leave(self, unit: str) -> None:
        left = self._counts[unit] = self._counts.get(unit, 0) - 1
        if left <= 0:
            del self._counts[unit]
            event = self._idle.pop(unit, None)
            if event is not None:
                event.set()

    def count(self, unit: str) -> int:
        return self._counts.get(unit, 0)

    def live(self) -> Mapping[str, int]:
        """The counts themselves (not a copy): for a reader that does not keep them."""
        return self._counts

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    async def wait_idle(self, unit: str) -> None:
        while self._counts.get(unit, 0) > 0:
            await self._idle.setdefault(unit, asyncio.Event()).wait()
