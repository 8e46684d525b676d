"""The pure parts of traffic metrics: the proxy's counters, the hub's arithmetic, the
Prometheus text and the API's span rules."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bindrop.api.metrics import parse_duration, plan_span
from bindrop.api.prometheus import render_prometheus
from bindrop.cli.metrics import render_top, sparkline
from bindrop.client.proxywire import (
    LATENCY_BUCKETS,
    TrafficReport,
    parse_traffic,
    parse_traffic_entry,
    render_report,
    render_traffic_entry,
)
from bindrop.errors import InvalidInput
from bindrop.hub import traffic as hub_traffic
from bindrop.hub.metrics import Resources
from bindrop.hub.traffic import Point, Traffic, downsample, quantile, traffic_of
from bindrop.proxy import counters as proxy_counters
from bindrop.proxy.counters import Counters


def test_the_proxy_and_the_hub_agree_on_the_latency_buckets() -> None:
    # one definition, the wire's, that both ends import
    assert hub_traffic.LATENCY_BUCKETS is LATENCY_BUCKETS
    assert proxy_counters.LATENCY_BUCKETS is LATENCY_BUCKETS


def counted() -> Counters:
    counters = Counters()
    counters.count("blog", "3", 200, 10, 100, 0.004)
    counters.count("blog", "3", 200, 0, 50, 0.005)  # on the bound: le is inclusive
    counters.count("blog", "3", 502, 0, 7, 0.2)
    counters.count("blog", "3", 0, 0, 0, 30.0)  # no answer, beyond every bound
    counters.count("blog", None, 503, 0, 9, 0.001)
    counters.count(None, None, 404, 0, 9, 0.001)  # matched no app: not counted
    return counters


def test_counters_report_requests_classes_gateway_codes_bytes_and_buckets() -> None:
    entries = {(e.app, e.release): render_traffic_entry(e) for e in counted().take()}
    assert set(entries) == {("blog", "3"), ("blog", "")}
    blog = entries[("blog", "3")]
    assert blog["requests"] == 4
    assert blog["classes"] == {"2xx": 2, "5xx": 1, "none": 1}
    assert blog["gateway"] == {"502": 1}
    assert (blog["bytes_in"], blog["bytes_out"]) == (10, 157)
    assert blog["latency"][0] == 2 and blog["latency"][LATENCY_BUCKETS.index(0.25)] == 1
    assert blog["latency"][-1] == 1
    assert entries[("blog", "")]["gateway"] == {"503": 1}


def test_take_resets_and_give_back_adds_the_counts_again() -> None:
    counters = counted()
    first = counters.take()
    assert not counters and counters.take() == []
    counters.count("blog", "3", 200, 0, 1, 0.001)
    counters.give_back(first)
    again = {(e.app, e.release): e for e in counters.take()}
    assert again[("blog", "3")].requests == 5
    assert again[("blog", "3")].classes["2xx"] == 3


def test_what_the_proxy_reports_is_what_the_hub_parses() -> None:
    body = render_report(TrafficReport("p1", tuple(counted().take())))
    parsed = traffic_of(parse_traffic(body))
    assert {(a, r): t.requests for a, r, t in parsed} == {("blog", "3"): 4, ("blog", ""): 1}


@pytest.mark.parametrize("change", [
    {"requests": -1}, {"requests": True}, {"requests": 2**60}, {"classes": {"6xx": 1}},
    {"gateway": {"500": 1}}, {"latency": [0]}, {"latency_sum": float("nan")},
    {"latency_sum": -1}, {"app": ""}, {"release": None}, {"classes": {"2xx": "1"}},
])
def test_a_malformed_traffic_entry_is_refused(change: dict[str, object]) -> None:
    entry = render_traffic_entry(counted().take()[0]) | change
    with pytest.raises(InvalidInput):
        parse_traffic_entry(entry)


def test_a_report_with_other_buckets_is_refused() -> None:
    with pytest.raises(InvalidInput, match="buckets"):
        parse_traffic({"proxy": "p1", "buckets": [1, 2], "traffic": []})


def test_quantiles_interpolate_within_a_bucket_and_none_without_requests() -> None:
    latency = [0] * (len(LATENCY_BUCKETS) + 1)
    assert quantile(latency, 0.5) is None
    latency[LATENCY_BUCKETS.index(0.1)] = 10  # all in (0.05, 0.1]
    assert quantile(latency, 0.5) == pytest.approx(0.075)
    latency[-1] = 90
    assert quantile(latency, 0.95) == LATENCY_BUCKETS[-1]


def test_downsampling_adds_traffic_keeps_the_most_memory_and_fills_gaps() -> None:
    points = [Point(0, 10, Traffic(requests=1), memory=5, cpu_ns=1),
              Point(10, 10, Traffic(requests=2), memory=9, cpu_ns=2),
              Point(40, 10, Traffic(requests=4), memory=1)]
    merged = downsample(points, 0, 60, 20)
    assert [(p.t, p.traffic.requests, p.memory, p.cpu_ns) for p in merged] == [
        (0, 3, 9, 3), (20, 0, None, 0), (40, 4, 1, 0)]


def test_prometheus_text_parses_with_cumulative_buckets_and_escaped_labels() -> None:
    traffic = Traffic(requests=3, classes={"2xx": 2, "5xx": 1}, gateway={"504": 1},
                      bytes_in=5, bytes_out=6, latency_sum=0.5,
                      latency=[1, 1] + [0] * (len(LATENCY_BUCKETS) - 2) + [1])
    text = render_prometheus({('we"ird', "1"): traffic},
                             [('we"ird', Resources(1024, 3, 1.5))])
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for f in text_string_to_metric_families(text) for s in f.samples}
    app = 'we"ird'

    def value(name: str, **labels: str) -> float:
        return found[(name, tuple(sorted(labels.items())))]

    assert value("bindrop_http_requests_total", app=app, release="1", code_class="2xx") == 2
    assert value("bindrop_http_request_duration_seconds_bucket", app=app, release="1",
                 le="0.01") == 2
    assert value("bindrop_http_request_duration_seconds_bucket", app=app, release="1",
                 le="+Inf") == 3
    assert value("bindrop_http_request_duration_seconds_count", app=app, release="1") == 3
    assert value("bindrop_http_gateway_errors_total", app=app, release="1", code="504") == 1
    assert value("bindrop_app_memory_bytes", app=app) == 1024
    assert value("bindrop_app_tasks", app=app) == 3
    assert value("bindrop_app_cpu_seconds_total", app=app) == 1.5


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("15m", 900), ("1h", 3600),
                                               ("7d", 604800)])
def test_durations_read_as_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text, "since") == seconds


@pytest.mark.parametrize("text", ["", "0", "-5", "1w", "1.5h", "9" * 9])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(text, "since")


def test_a_span_uses_10_s_steps_within_the_hour_and_minutes_beyond() -> None:
    now = 1_000_000_005
    since, until, step = plan_span(None, None, now)
    assert (until, step) == (1_000_000_000, 30)
    assert since % step == 0 and 3600 <= until - since < 3600 + step
    assert plan_span("15m", "1", now)[2] == 10
    assert plan_span("1d", "10", now)[2] == 60
    assert plan_span("7d", "1h", now)[2] == 3600
    with pytest.raises(InvalidInput):
        plan_span("8d", None, now)
    with pytest.raises(InvalidInput):
        plan_span("7d", "1m", now)


def test_a_sparkline_scales_to_the_busiest_step_and_shows_quiet_steps_blank() -> None:
    assert sparkline([0, 1, 4, 8]) == " ▁▄█"
    assert sparkline([0, 0]) == "  "


def test_a_top_frame_has_a_row_per_app_and_fits_the_terminal() -> None:
    overview = {"since": 0, "until": 60, "step": 10, "apps": [
        {"app": "blog", "state": "running", "rate": 2.5, "errors": 3, "error_rate": 0.02,
         "p95": 0.123, "memory_now": 50 * 1024**2, "cpu": 0.05, "trend": [1, 2, 3, 4, 5, 6]},
        {"app": "shop", "state": "stopped", "rate": 0.0, "errors": 0, "error_rate": None,
         "p95": None, "memory_now": None, "cpu": 0.0, "trend": [0] * 6}]}
    frame = render_top(overview, width=80, now=0).splitlines()
    assert frame[2].split()[:7] == ["APP", "STATE", "REQ/S", "ERRORS", "P95", "MEMORY", "CPU"]
    assert frame[3].split()[:8] == ["blog", "running", "2.50", "3", "(2.0%)", "123ms",
                                    "50.0M", "5.0%"]
    assert frame[4].split()[:2] == ["shop", "stopped"]
    assert all(len(line) <= 80 for line in frame)
    assert all(len(line) <= 30 for line in render_top(overview, width=30, now=0).splitlines())
