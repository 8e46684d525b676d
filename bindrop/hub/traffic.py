"""Traffic and resource figures as the hub keeps them: pure values and their arithmetic.

A ``Traffic`` is what the proxies counted for one app (or one release) over some span:
requests, answers per class, gateway errors, bytes and a latency histogram with the buckets
of ``LATENCY_BUCKETS`` (the wire's, ``bindrop.client.proxywire``). A ``Point``
is one app over one step: its traffic plus memory, CPU and tasks from systemd.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bindrop.client.proxywire import LATENCY_BUCKETS, TrafficReport


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


def traffic_of(report: TrafficReport) -> list[tuple[str, str, Traffic]]:
    """A proxy's traffic report as app, release and what was counted. Pure."""
    return [(e.app, e.release, Traffic(
        requests=e.requests, classes=dict(e.classes), gateway=dict(e.gateway),
        bytes_in=e.bytes_in, bytes_out=e.bytes_out, latency_sum=e.latency_sum,
        latency=list(e.latency))) for e in report.traffic]


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
