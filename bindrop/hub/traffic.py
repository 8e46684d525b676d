"""Traffic and resource figures as the hub keeps them: pure values and their arithmetic.

A ``Traffic`` is what the proxies counted for one app (or one release) over some span:
requests, answers per class, gateway errors, bytes and a latency histogram with the buckets
of ``LATENCY_BUCKETS`` (the same as the proxies', ``bindrop.client.proxywire``). A ``Point``
is one app over one step: its traffic plus memory, CPU and tasks from systemd.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bindrop.errors import InvalidInput

#: Upper bounds (seconds, inclusive) of the latency buckets; a last one, +Inf, follows.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CLASSES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")
GATEWAY_CODES = ("502", "503", "504")
_MAX_COUNT = 2**53  # what a JSON number carries exactly


@dataclass
class Traffic:
    requests: int = 0
    classes: dict[str, int] = field(default_factory=dict)
    gateway: dict[str, int] = field(default_factory=dict)
    bytes_in: int = 0
    bytes_out: int = 0
    latency_sum: float = 0.0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))

    def add(self, other: Traffic) -> None:
        self.requests += other.requests
        for name, n in other.classes.items():
            self.classes[name] = self.classes.get(name, 0) + n
        for code, n in other.gateway.items():
            self.gateway[code] = self.gateway.get(code, 0) + n
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.latency_sum += other.latency_sum
        for i, n in enumerate(other.latency):
            self.latency[i] += n

    def errors(self) -> int:
        """Answers the app or the proxy got wrong: 5xx and requests left unanswered."""
        return self.classes.get("5xx", 0) + self.classes.get("none", 0)

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "classes": dict(self.classes),
                "gateway": dict(self.gateway), "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out, "latency_sum": self.latency_sum,
                "latency": list(self.latency)}


def sum_traffic(items: Iterable[Traffic]) -> Traffic:
    total = Traffic()
    for item in items:
        total.add(item)
    return total


def quantile(latency: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a latency histogram, in seconds, interpolated within its
    bucket as Prometheus' ``histogram_quantile`` does; None without requests. Pure."""
    total = sum(latency)
    if not total:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(latency):
        if n and seen + n >= rank:
            if i >= len(LATENCY_BUCKETS):  # +Inf: the highest finite bound is all we know
                return LATENCY_BUCKETS[-1]
            low = LATENCY_BUCKETS[i - 1] if i else 0.0
            return low + (LATENCY_BUCKETS[i] - low) * (rank - seen) / n
        seen += n
    return LATENCY_BUCKETS[-1]


def _count(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _MAX_COUNT:
        raise InvalidInput(f"{what} must be a count")
    return value


def parse_entry(entry: object) -> tuple[str, str, Traffic]:
    """One entry of a proxy's traffic report (``bindrop.client.proxywire``): app, release and
    what was counted. ``InvalidInput`` for anything malformed. Pure."""
    if not isinstance(entry, dict):
        raise InvalidInput("a traffic entry must be a JSON object")
    app, release = entry.get("app"), entry.get("release")
    if not isinstance(app, str) or not isinstance(release, str) or not app:
        raise InvalidInput("a traffic entry needs an app and a release (text)")
    classes, gateway = entry.get("classes"), entry.get("gateway")
    latency = entry.get("latency")
    latency_sum = entry.get("latency_sum")
    if not isinstance(classes, dict) or not set(classes) <= set(CLASSES):
        raise InvalidInput(f"classes must map {', '.join(CLASSES)} to counts")
    if not isinstance(gateway, dict) or not set(gateway) <= set(GATEWAY_CODES):
        raise InvalidInput(f"gateway must map {', '.join(GATEWAY_CODES)} to counts")
    if not isinstance(latency, list) or len(latency) != len(LATENCY_BUCKETS) + 1:
        raise InvalidInput(f"latency must hold {len(LATENCY_BUCKETS) + 1} counts")
    if (not isinstance(latency_sum, (int, float)) or isinstance(latency_sum, bool)
            or not math.isfinite(latency_sum) or latency_sum < 0):
        raise InvalidInput("latency_sum must be a number of seconds")
    return app, release, Traffic(
        requests=_count(entry.get("requests"), "requests"),
        classes={k: _count(v, "a class") for k, v in classes.items()},
        gateway={k: _count(v, "a gateway code") for k, v in gateway.items()},
        bytes_in=_count(entry.get("bytes_in"), "bytes_in"),
        bytes_out=_count(entry.get("bytes_out"), "bytes_out"),
        latency_sum=float(latency_sum),
        latency=[_count(n, "a latency bucket") for n in latency])


def parse_report(body: Mapping[str, Any]) -> list[tuple[str, str, Traffic]]:
    """A proxy's whole traffic report; ``InvalidInput`` if its buckets are not ours. Pure."""
    buckets = body.get("buckets")
    if not isinstance(buckets, list) or tuple(buckets) != LATENCY_BUCKETS:
        raise InvalidInput("the report's latency buckets differ from the hub's; "
                           "upgrade the proxy and the hub together")
    entries = body.get("traffic")
    if not isinstance(entries, list):
        raise InvalidInput("traffic must be a list of entries")
    return [parse_entry(e) for e in entries]


@dataclass
class Point:
    """One app over ``step`` seconds from ``t`` (unix seconds)."""

    t: int
    step: int
    traffic: Traffic = field(default_factory=Traffic)
    memory: int | None = None  # bytes, at the end of the step (the most, once merged)
    cpu_ns: int = 0  # CPU time used during the step
    tasks: int | None = None

    def to_dict(self) -> dict[str, Any]:
        latency = self.traffic.latency
        return {"t": self.t, "step": self.step, **self.traffic.to_dict(),
                "errors": self.traffic.errors(),
                "p50": quantile(latency, 0.5), "p95": quantile(latency, 0.95),
                "memory": self.memory, "cpu_seconds": self.cpu_ns / 1e9, "tasks": self.tasks}


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def merge_points(points: Iterable[Point], t: int, step: int) -> Point:
    """Points as one over [t, t + step): traffic and CPU added, memory and tasks the most."""
    merged = Point(t, step)
    for point in points:
        merged.traffic.add(point.traffic)
        merged.cpu_ns += point.cpu_ns
        merged.memory = _max(merged.memory, point.memory)
        merged.tasks = _max(merged.tasks, point.tasks)
    return merged


def downsample(points: Iterable[Point], since: int, until: int, step: int) -> list[Point]:
    """Points regrouped into steps of ``step`` seconds from ``since`` (steps with no point
    are present and empty, so a graph shows a gap as zero traffic). Pure."""
    groups: dict[int, list[Point]] = {}
    for point in points:
        if since <= point.t < until:
            groups.setdefault(since + (point.t - since) // step * step, []).append(point)
    return [merge_points(groups.get(t, ()), t, step) for t in range(since, until, step)]
