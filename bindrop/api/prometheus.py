"""``GET /metrics``: traffic and resources in the Prometheus text format (version 0.0.4).

Pure: ``render_prometheus`` turns what the hub holds into text. Counters are totals since
the hub started (Prometheus handles their reset to zero on a hub restart); the histogram
follows Prometheus' conventions (cumulative ``_bucket`` lines with ``le``, ``+Inf`` equal
to ``_count``, and ``_sum``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bindrop.client.proxywire import CLASSES, GATEWAY_CODES, LATENCY_BUCKETS
from bindrop.hub.metrics import Resources
from bindrop.hub.traffic import Traffic

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


def render_prometheus(totals: Mapping[tuple[str, str], Traffic],
                      resources: Iterable[tuple[str, Resources]]) -> str:
    """The text of ``/metrics``: ``totals`` per (app, release), ``resources`` per app."""
    keys = sorted(totals)
    lines: list[str] = []
    _family(lines, "bindrop_http_requests_total", "counter",
            "Requests the proxy answered for an app, by class of answer (none: no answer).")
    for app, release in keys:
        traffic = totals[(app, release)]
        for name in CLASSES:
            count = traffic.classes.get(name, 0)
            if count or name in ("2xx", "5xx"):
                lines.append("bindrop_http_requests_total"
                             f"{_labels(app=app, release=release, code_class=name)} {count}")
    _family(lines, "bindrop_http_gateway_errors_total", "counter",
            "Answers the proxy gave itself: 502 (app refused), 503 (not running), "
            "504 (no answer in time).")
    for app, release in keys:
        traffic = totals[(app, release)]
        for code in GATEWAY_CODES:
            lines.append("bindrop_http_gateway_errors_total"
                         f"{_labels(app=app, release=release, code=code)} "
                         f"{traffic.gateway.get(code, 0)}")
    for name, attr, help_text in (
            ("bindrop_http_request_body_bytes_total", "bytes_in",
             "Request body bytes sent on to the app."),
            ("bindrop_http_response_body_bytes_total", "bytes_out",
             "Response body bytes sent back to visitors.")):
        _family(lines, name, "counter", help_text)
        for app, release in keys:
            lines.append(f"{name}{_labels(app=app, release=release)} "
                         f"{getattr(totals[(app, release)], attr)}")
    name = "bindrop_http_request_duration_seconds"
    _family(lines, name, "histogram",
            "Time from a request's arrival to the end of its answer, seconds.")
    for app, release in keys:
        traffic = totals[(app, release)]
        seen = 0
        for bound, count in zip((*map(str, LATENCY_BUCKETS), "+Inf"), traffic.latency,
                                strict=True):
            seen += count
            lines.append(f"{name}_bucket{_labels(app=app, release=release, le=bound)} {seen}")
        lines.append(f"{name}_sum{_labels(app=app, release=release)} "
                     f"{_number(traffic.latency_sum)}")
        lines.append(f"{name}_count{_labels(app=app, release=release)} {seen}")
    resources = sorted(resources)
    for name, kind, help_text in (
            ("bindrop_app_memory_bytes", "gauge", "Memory of the app's running units."),
            ("bindrop_app_tasks", "gauge", "Tasks (threads) of the app's running units."),
            ("bindrop_app_cpu_seconds_total", "counter",
             "CPU time the app's units used since the hub started.")):
        _family(lines, name, kind, help_text)
        for app, figures in resources:
            value: float | int | None = (
                figures.memory if kind == "gauge" and name.endswith("bytes")
                else figures.tasks if kind == "gauge" else figures.cpu_seconds)
            if value is not None:
                lines.append(f"{name}{_labels(app=app)} {_number(value)}")
    return "\n".join(lines) + "\n"
