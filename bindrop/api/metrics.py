"""An app's traffic and resource history as JSON series, and ``/metrics`` for Prometheus."""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from bindrop.api.bodies import query_flag
from bindrop.api.keys import HUB, STORE
from bindrop.api.prometheus import CONTENT_TYPE, render_prometheus
from bindrop.api.views import view_dict
from bindrop.client.proxywire import LATENCY_BUCKETS
from bindrop.errors import InvalidInput
from bindrop.hub.metrics import MEMORY_KEPT, MINUTE, RETENTION, STEP
from bindrop.hub.traffic import Point, merge_points, quantile, sum_traffic

POINTS_MAX = 2000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d{1,7})([smhd]?)")
#: Events drawn on a graph's time axis.
MARK_KINDS = frozenset({"deploy_succeeded", "deploy_failed", "rollback_succeeded",
                        "rollback_failed", "restart_succeeded", "start_succeeded",
                        "app_stopped", "app_gave_up", "app_unresponsive"})


def parse_duration(text: str, what: str) -> int:
    """``90``, ``90s``, ``15m``, ``1h``, ``7d`` as seconds. Pure."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise InvalidInput(f"{what} must be a duration such as 3600, 15m, 1h or 7d")
    return int(match[1]) * _UNITS[match[2] or "s"]


def plan_span(since_text: str | None, step_text: str | None, now: int) -> tuple[int, int, int]:
    """``(since, until, step)`` in unix seconds for a request. ``since`` is how far back
    (default 1h, at most the retention); ``step`` defaults to about 120 points and is rounded
    to a multiple of the history's own resolution (10 s within the last hour, else 1 min).
    Pure."""
    back = parse_duration(since_text, "since") if since_text else 3600
    if back > RETENTION:
        raise InvalidInput(f"since may reach back at most {RETENTION // 86400} days")
    base = STEP if back <= MEMORY_KEPT else MINUTE
    step = parse_duration(step_text, "step") if step_text else back // 120
    step = max(base, step // base * base)
    until = now - now % STEP
    since = until - back
    since -= since % step
    if (until - since) // step > POINTS_MAX:
        raise InvalidInput(f"that is more than {POINTS_MAX} points; choose a larger step")
    return since, until, step


async def app_metrics(request: web.Request) -> dict[str, Any]:
    hub = request.app[HUB]
    store = request.app[STORE]
    app = store.get_app(request.match_info["app"]).name
    since, until, step = plan_span(request.query.get("since"), request.query.get("step"),
                                   int(time.time()))
    points = hub.metrics.series(app, since, until, step)
    if points:  # after a hub restart the last hour may come in whole minutes
        since, step = points[0].t, points[0].step
    totals = {release: traffic.to_dict() for (name, release), traffic
              in sorted(hub.metrics.totals.items()) if name == app}
    marks: list[dict[str, Any]] = [
        {"t": int(e.at.timestamp()), "kind": e.kind, "message": e.message}
        for e in store.list_events(app, limit=500)
        if e.kind in MARK_KINDS and since <= e.at.timestamp() < until + step]
    marks = sorted(marks + hub.metrics.crashes(app, since, until + step),
                   key=lambda m: m["t"])
    resources = hub.metrics.resources(app)
    return {"app": app, "since": since, "until": until, "step": step,
            "buckets": list(LATENCY_BUCKETS), "points": [p.to_dict() for p in points],
            "totals": {"releases": totals, "all": sum_traffic(
                t for (name, _), t in hub.metrics.totals.items() if name == app).to_dict()},
            "now": {"memory": resources.memory, "tasks": resources.tasks,
                    "cpu_seconds": resources.cpu_seconds},
            "marks": marks}


def summarize(points: list[Point]) -> dict[str, Any]:
    """Rates and quantiles over ``points`` (consecutive, of one step): requests/s, error
    share, p50/p95 (seconds), the most memory and the CPU share of one core. Pure."""
    if not points:
        return {"requests": 0, "rate": 0.0, "errors": 0, "error_rate": None, "p50": None,
                "p95": None, "memory": None, "cpu": 0.0}
    span = len(points) * points[0].step
    merged = merge_points(points, points[0].t, span)
    traffic = merged.traffic
    return {"requests": traffic.requests, "rate": traffic.requests / span,
            "errors": traffic.errors(),
            "error_rate": traffic.errors() / traffic.requests if traffic.requests else None,
            "p50": quantile(traffic.latency, 0.5), "p95": quantile(traffic.latency, 0.95),
            "memory": merged.memory, "cpu": merged.cpu_ns / 1e9 / span}


async def overview(request: web.Request) -> dict[str, Any]:
    """Every app over one span: its live state, a summary and the requests of each step
    (a trend line). ``bindrop top`` and the dashboard's apps page read this."""
    hub = request.app[HUB]
    store = request.app[STORE]
    since, until, step = plan_span(request.query.get("since"), request.query.get("step"),
                                   int(time.time()))
    apps = []
    for config in store.list_apps(include_system=query_flag(request.query, "all")):
        points = hub.metrics.series(config.name, since, until, step)
        resources = hub.metrics.resources(config.name)
        live = view_dict(hub.state.app(config.name))
        apps.append({"app": config.name, "state": live["state"], "release": live["release"],
                     **summarize(points), "memory_now": resources.memory,
                     "tasks_now": resources.tasks,
                     "trend": [p.traffic.requests for p in points]})
    return {"since": since, "until": until, "step": step, "apps": apps}


async def prometheus(request: web.Request) -> web.StreamResponse:
    metrics = request.app[HUB].metrics
    text = render_prometheus(metrics.totals, [(a, metrics.resources(a)) for a in metrics.apps()])
    return web.Response(text=text, headers={"Content-Type": CONTENT_TYPE})
