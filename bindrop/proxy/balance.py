"""Choosing a web instance for a request: the one with the fewest requests in flight. Pure.

Ties go to the instance after the one picked last (round robin among equals), so idle
instances all get work; an instance that refused a connection is skipped for the rest of
that request (``exclude``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from bindrop.client.proxywire import Upstream


def pick_upstream(upstreams: Sequence[Upstream], in_flight: Mapping[str, int], *,
                  turn: int = 0, exclude: Collection[str] = ()) -> Upstream | None:
    """The instance (by unit) with the fewest requests in flight, not in ``exclude``; ties
    broken starting at index ``turn``. None when every instance is excluded."""
    best: Upstream | None = None
    best_count = 0
    n = len(upstreams)
    for i in range(n):
        candidate = upstreams[(turn + i) % n]
        if candidate.unit in exclude:
            continue
        count = in_flight.get(candidate.unit, 0)
        if best is None or count < best_count:
            best, best_count = candidate, count
    return best
