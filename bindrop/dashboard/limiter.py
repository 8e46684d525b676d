"""Failed logins per address: past a few within a window, that address must wait.

A wrong token costs its sender a short delay already; this bounds how many guesses one
address gets at all (``FAILURES_MAX`` per ``WINDOW_S``), as fail2ban would. The address is
the visitor's as the proxy saw it (``X-Forwarded-For``, set at the edge), since the dashboard
itself only ever hears from the proxy.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping

FAILURES_MAX = 10
WINDOW_S = 600.0
ADDRESSES_MAX = 10_000


def client_address(remote: str | None, headers: Mapping[str, str]) -> str:
    """Who is logging in: the last ``X-Forwarded-For`` hop when the request came from this
    machine (the proxy), else the peer itself. Pure."""
    peer = remote or "unknown"
    try:
        local = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        local = peer == "unknown"
    forwarded = headers.get("X-Forwarded-For", "")
    if local and forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()[:64] or peer
    return peer


class LoginLimiter:
    """Remembers failed logins per address (bounded: the oldest addresses go first)."""

    def __init__(self, *, failures: int = FAILURES_MAX, window: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.window = window
        self.clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str) -> deque[float]:
        times = self._seen.get(address)
        if times is None:
            return deque()
        cutoff = self.clock() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._seen[address]
        return times

    def wait_for(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: it may now)."""
        times = self._recent(address)
        if len(times) < self.failures:
            return 0.0
        return max(0.0, times[0] + self.window - self.clock())

    def failed(self, address: str) -> None:
        times = self._recent(address)
        times.append(self.clock())
        self._seen[address] = times
        self._seen.move_to_end(address)
        while len(self._seen) > ADDRESSES_MAX:
            self._seen.popitem(last=False)
