"""Ports for app units: each new unit gets a fresh one, so old and new can overlap."""

from __future__ import annotations

import random
import socket

from bindrop.errors import Conflict


class PortPool:
    """Hands out ports in ``[low, high]`` that no known unit uses and that bind right now.

    A port belongs to a unit from ``allocate`` (or ``claim``, for a unit adopted at start-up)
    until ``release`` of that unit (stopped, or gone from systemd).
    """

    def __init__(self, low: int, high: int, *, rng: random.Random | None = None) -> None:
        self.low, self.high = low, high
        self._by_unit: dict[str, int] = {}
        self._rng = rng or random.Random()

    def claim(self, unit: str, port: int) -> None:
        self._by_unit[unit] = port

    def release(self, unit: str) -> None:
        self._by_unit.pop(unit, None)

    def port_of(self, unit: str) -> int | None:
        return self._by_unit.get(unit)

    def allocate(self, unit: str) -> int:
        taken = set(self._by_unit.values())
        span = self.high - self.low + 1
        start = self._rng.randrange(span)
        for i in range(span):
            port = self.low + (start + i) % span
            if port not in taken and _bindable(port):
                self._by_unit[unit] = port
                return port
        raise Conflict(f"no free port left in {self.low}-{self.high}: stop some apps or widen "
                       "the port range")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_from_environment(environment: list[str]) -> int | None:
    """The ``PORT=`` a unit was started with (its ``Environment`` property), if any."""
    for entry in environment:
        key, _, value = entry.partition("=")
        if key == "PORT" and value.isdigit():
            return int(value)
    return None
