"""Traffic counters per app and release, kept by each proxy worker and reported to the hub.

``Counters.count`` runs once per request, so it is a few list increments and no allocation
once an (app, release) pair has its row. ``take`` hands over what was counted since the last
call (deltas: the hub adds up every worker's reports) as the JSON body of a traffic report;
``give_back`` returns a report the hub did not receive, so no count is lost while it is away.
The report's layout is documented in ``bindrop.client.proxywire``.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from bindrop.client.proxywire import CLASSES, GATEWAY_CODES, LATENCY_BUCKETS, TrafficEntry

# A row: requests, answers per class, gateway errors, bytes, latency sum, then the latency
# buckets (the last one is +Inf). Plain indexes into one list: cheaper than attributes.
_REQUESTS = 0
_CLASS = 1  # _CLASS + status // 100 for 1xx..5xx; _CLASS for "no answer" (status 0)
_GATEWAY = 7  # 502, 503, 504
_BYTES_IN = 10
_BYTES_OUT = 11
_LATENCY_SUM = 12
_BUCKET = 13
_WIDTH = _BUCKET + len(LATENCY_BUCKETS) + 1


class Counters:
    def __init__(self) -> None:
        self._rows: dict[str, dict[str, list[Any]]] = {}

    def count(self, app: str | None, release: str | None, status: int, received: int,
              sent: int, seconds: float) -> None:
        """One answered (or abandoned, ``status`` 0) request. Requests that matched no app
        are not counted."""
        if app is None:
            return
        releases = self._rows.get(app)
        if releases is None:
            releases = self._rows[app] = {}
        row = releases.get(release or "")
        if row is None:
            row = releases[release or ""] = [0] * _WIDTH
            row[_LATENCY_SUM] = 0.0
        row[_REQUESTS] += 1
        if 100 <= status < 600:
            row[_CLASS + status // 100] += 1
            if 502 <= status <= 504:
                row[_GATEWAY + status - 502] += 1
        else:
            row[_CLASS] += 1
        row[_BYTES_IN] += received
        row[_BYTES_OUT] += sent
        row[_LATENCY_SUM] += seconds
        row[_BUCKET + bisect_left(LATENCY_BUCKETS, seconds)] += 1

    def __bool__(self) -> bool:
        return bool(self._rows)

    def take(self) -> list[TrafficEntry]:
        """What was counted since the last call, as report entries; resets the counts."""
        rows, self._rows = self._rows, {}
        return [render_row(app, release, row)
                for app, releases in rows.items() for release, row in releases.items()]

    def give_back(self, entries: list[TrafficEntry]) -> None:
        """Add entries from ``take`` back (the hub did not get them)."""
        for entry in entries:
            row = parse_row(entry)
            releases = self._rows.setdefault(entry.app, {})
            mine = releases.get(entry.release)
            if mine is None:
                releases[entry.release] = row
            else:
                for i, value in enumerate(row):
                    mine[i] += value


def render_row(app: str, release: str, row: list[Any]) -> TrafficEntry:
    """One report entry (classes and codes with no request left out). Pure."""
    return TrafficEntry(
        app=app, release=release, requests=row[_REQUESTS],
        classes={name: row[_CLASS + i] for i, name in enumerate(CLASSES) if row[_CLASS + i]},
        gateway={code: row[_GATEWAY + i] for i, code in enumerate(GATEWAY_CODES)
                 if row[_GATEWAY + i]},
        bytes_in=row[_BYTES_IN], bytes_out=row[_BYTES_OUT],
        latency_sum=row[_LATENCY_SUM], latency=tuple(row[_BUCKET:]))


def parse_row(entry: TrafficEntry) -> list[Any]:
    """The inverse of ``render_row`` (for entries this worker rendered itself). Pure."""
    row: list[Any] = [0] * _WIDTH
    row[_REQUESTS] = entry.requests
    for i, name in enumerate(CLASSES):
        row[_CLASS + i] = entry.classes.get(name, 0)
    for i, code in enumerate(GATEWAY_CODES):
        row[_GATEWAY + i] = entry.gateway.get(code, 0)
    row[_BYTES_IN], row[_BYTES_OUT] = entry.bytes_in, entry.bytes_out
    row[_LATENCY_SUM] = entry.latency_sum
    row[_BUCKET:] = entry.latency
    return row
