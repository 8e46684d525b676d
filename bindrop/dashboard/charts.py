"""Graphs as server-rendered SVG: no script, no CDN, nothing the CSP must allow. Pure.

``build_charts`` turns the API's series (``/v1/apps/{app}/metrics``) into the app page's
graphs: requests/s, error rate, p50/p95 latency, memory and CPU, each with deploys and
restarts marked on its time axis. ``render_chart`` draws one; ``render_sparkline`` draws the
small trend line of the apps page. Every number is formatted here; every text is escaped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from markupsafe import Markup, escape

from bindrop.domain.sizes import format_bytes

WIDTH, HEIGHT = 400, 130
LEFT, RIGHT, TOP, BOTTOM = 46, 6, 8, 18
RANGES = {"1h": ("1h", None), "1d": ("1d", "10m"), "7d": ("7d", "1h")}


@dataclass(frozen=True)
class Line:
    label: str
    values: Sequence[float | None]
    css: str  # a class of dashboard.css (its colour)


@dataclass(frozen=True)
class Chart:
    title: str
    lines: Sequence[Line]
    format: Callable[[float], str]
    now: str  # the latest value, as shown beside the title


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^n at or above ``value`` (0 -> 1). Pure."""
    if value <= 0:
        return 1.0
    scale = 10.0 ** int(f"{value:e}".split("e")[1])
    for step in (1, 2, 2.5, 5, 10):
        if step * scale >= value * (1 - 1e-9):
            return step * scale
    return 10 * scale


def _clock(t: int, span: int) -> str:
    pattern = "%H:%M" if span <= 86400 else "%m-%d"
    return time.strftime(pattern, time.gmtime(t))


def render_chart(chart: Chart, times: Sequence[int], step: int,
                 marks: Sequence[dict[str, Any]]) -> Markup:
    """One graph: its lines over ``times`` (the start of each step), marks as vertical
    lines with their event as a tooltip. ``data-points`` counts the values drawn."""
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    start = times[0] if times else 0
    span = max(step, (times[-1] + step - start) if times else step)
    top = nice_ceiling(max((v for line in chart.lines for v in line.values if v is not None),
                           default=0.0))

    def x(t: float) -> float:
        return LEFT + (t - start) / span * inner_w

    def y(v: float) -> float:
        return TOP + inner_h - v / top * inner_h

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(chart.title)}" data-points="'
             f'{sum(v is not None for line in chart.lines for v in line.values)}">',
             f'<line class="axis" x1="{LEFT}" y1="{TOP + inner_h}" x2="{WIDTH - RIGHT}" '
             f'y2="{TOP + inner_h}"/>',
             f'<line class="grid" x1="{LEFT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}"/>',
             f'<text class="tick" x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">'
             f'{escape(chart.format(top))}</text>',
             f'<text class="tick" x="{LEFT - 4}" y="{TOP + inner_h}" text-anchor="end">0</text>']
    if times:
        parts.append(f'<text class="tick" x="{LEFT}" y="{HEIGHT - 4}">'
                     f'{_clock(start, span)}</text>')
        parts.append(f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" '
                     f'text-anchor="end">{_clock(start + span, span)} UTC</text>')
    for mark in marks:
        if start <= mark["t"] <= start + span:
            mx = f"{x(mark['t']):.1f}"
            kind = str(mark["kind"]).split("_")[0]
            parts.append(f'<line class="mark mark-{escape(kind)}" x1="{mx}" y1="{TOP}" '
                         f'x2="{mx}" y2="{TOP + inner_h}"><title>'
                         f'{escape(time.strftime("%m-%d %H:%M", time.gmtime(mark["t"])))} '
                         f'{escape(mark["kind"])}: {escape(mark["message"])}</title></line>')
    for line in chart.lines:
        for run in _runs(line.values):
            points = " ".join(f"{x(times[i] + step / 2):.1f},{y(v):.1f}" for i, v in run)
            if len(run) == 1:  # a lone value: a dot, so it shows
                i, v = run[0]
                parts.append(f'<circle class="line {line.css}" cx="{x(times[i] + step / 2):.1f}"'
                             f' cy="{y(v):.1f}" r="1.8"><title>{escape(line.label)}</title>'
                             "</circle>")
            else:
                parts.append(f'<polyline class="line {line.css}" points="{points}">'
                             f"<title>{escape(line.label)}</title></polyline>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Unbroken stretches of values (None breaks a line)."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((i, v))
    return [r for r in runs if r]


def render_sparkline(values: Sequence[int], *, width: int = 120, height: int = 24) -> Markup:
    """A small trend line of requests per step, scaled to its own highest value."""
    top = max(values, default=0) or 1
    n = max(1, len(values) - 1)
    points = " ".join(f"{i / n * width:.1f},{height - 1 - v / top * (height - 2):.1f}"
                      for i, v in enumerate(values))
    return Markup(f'<svg class="spark" viewBox="0 0 {width} {height}" role="img" '
                  f'aria-label="requests, last hour" data-points="{len(values)}">'
                  f'<polyline class="line line-requests" points="{points}"/></svg>')


def _last(values: Sequence[float | None]) -> float | None:
    return next((v for v in reversed(values) if v is not None), None)


def _rate(v: float) -> str:
    return f"{v:.2f}/s" if v < 10 else f"{v:.0f}/s"


_bytes = partial(format_bytes, style="iec")


def _ms(v: float) -> str:
    return f"{v * 1000:.0f} ms" if v >= 0.001 else f"{v * 1000:.2f} ms"


def _percent(v: float) -> str:
    return f"{v:.0f}%" if v >= 10 else f"{v:.1f}%"


def build_charts(series: dict[str, Any]) -> list[Chart]:
    """The app page's graphs from one answer of ``/v1/apps/{app}/metrics``. Pure."""
    points = series["points"]
    step = series["step"]
    # A step with no request and no running unit has no figure at all: a gap, not a zero.
    requests: list[float | None] = [
        p["requests"] / step if p["requests"] or p["memory"] is not None else None
        for p in points]
    errors: list[float | None] = [p["errors"] / p["requests"] * 100 if p["requests"] else None
                                  for p in points]
    p50 = [p["p50"] for p in points]
    p95 = [p["p95"] for p in points]
    memory = [p["memory"] for p in points]
    cpu = [p["cpu_seconds"] / step * 100 if p["memory"] is not None else None for p in points]

    def now(values: Sequence[float | None], fmt: Callable[[float], str]) -> str:
        value = _last(values)
        return "-" if value is None else fmt(value)

    return [
        Chart("Requests", [Line("requests/s", requests, "line-requests")], _rate,
              now(requests, _rate)),
        Chart("Errors (5xx and unanswered)", [Line("errors", errors, "line-errors")],
              _percent, now(errors, _percent)),
        Chart("Latency p50 / p95", [Line("p50", p50, "line-p50"),
                                    Line("p95", p95, "line-p95")], _ms,
              f"{now(p50, _ms)} / {now(p95, _ms)}"),
        Chart("Memory", [Line("memory", memory, "line-memory")], _bytes, now(memory, _bytes)),
        Chart("CPU (share of one core)", [Line("cpu", cpu, "line-cpu")], _percent,
              now(cpu, _percent)),
    ]
