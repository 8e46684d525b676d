"""The dashboard's pure parts: sessions, formatting, and how the hub runs it (launcher, unit)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bindrop.dashboard.format import (
    app_url,
    format_cpu,
    format_duration,
    format_limit,
    format_time,
    format_uptime,
)
from bindrop.dashboard.login import is_secure_context, parse_token
from bindrop.dashboard.sessions import SessionStore, same_secret
from bindrop.errors import InvalidInput
from bindrop.hub.system import build_launcher, build_read_only_paths, parse_dashboard_host
from bindrop.settings import Settings
from bindrop.units import AppSpec, ReleaseSpec, build_app_unit
from bindrop.units.render import render_unit_file


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_is_found_by_its_id_and_holds_its_own_csrf_token() -> None:
    store = SessionStore()
    one, two = store.create("t1", "token a", True), store.create("t2", "token b", False)
    assert store.get(one.id) is one and store.get(two.id) is two
    assert one.id != two.id and one.csrf != two.csrf and one.csrf != one.id
    assert store.get("nope") is None and store.get(None) is None
    assert "t1" not in repr(one) and one.csrf not in repr(one)


def test_a_session_ends_after_its_idle_time_and_its_max_age() -> None:
    clock = Clock()
    store = SessionStore(max_age=100, idle=10, clock=clock)
    session = store.create("t", "n", True)
    clock.now += 9
    assert store.get(session.id) is session  # use resets the idle time
    clock.now += 9
    assert store.get(session.id) is session
    clock.now += 11
    assert store.get(session.id) is None and len(store) == 0
    late = store.create("t", "n", True)
    for _ in range(11):
        clock.now += 9.5
        store.get(late.id)
    assert store.get(late.id) is None  # past max_age although used


def test_the_oldest_unused_session_goes_when_there_are_too_many() -> None:
    store = SessionStore(max_sessions=2)
    a, b = store.create("a", "a", True), store.create("b", "b", True)
    store.get(a.id)
    c = store.create("c", "c", True)
    assert store.get(b.id) is None and store.get(a.id) is a and store.get(c.id) is c


def test_logging_out_drops_the_session() -> None:
    store = SessionStore()
    session = store.create("t", "n", True)
    store.drop(session.id)
    store.drop(session.id)
    assert store.get(session.id) is None


@pytest.mark.parametrize(("given", "ok"), [("abc", True), ("abd", False), ("", False),
                                          (None, False), (b"abc", False), ("abcd", False)])
def test_csrf_tokens_compare_exactly(given: object, ok: bool) -> None:
    assert same_secret(given, "abc") is ok


@pytest.mark.parametrize(("value", "token"), [(" bd_x \n", "bd_x"), ("", None), ("a b", None),
                                              ("x" * 513, None), ("a\x00", None), (3, None)])
def test_a_login_token_is_one_printable_word(value: object, token: str | None) -> None:
    assert parse_token(value) == token


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59, "59s"), (61, "1m 1s"),
                                               (3725, "1h 2m"), (90061, "1d 1h"), (-5, "0s")])
def test_format_duration_shows_the_two_largest_units(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_uptime_and_times_come_from_the_apis_iso_text() -> None:
    now = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    assert format_uptime("2026-11-28T08:00:00+00:00", now) == "1h"
    assert format_uptime(None, now) == format_uptime("garbage", now) == "-"
    assert format_time("2026-11-28T08:05:34.123+00:00") == "2026-11-28 08:05:34 UTC"
    assert format_time(None) == "-"
    assert format_cpu(1_500_000_000) == "1.5 s" and format_cpu(None) == "-"


@pytest.mark.parametrize(("value", "kind", "text"), [
    (256 * 1024**2, "memory", "256M"), (2 * 1024**3, "memory", "2G"), (1000, "memory", "1000"),
    (50, "cpu", "50%"), (64, "tasks", "64"), (None, "memory", "")])
def test_limits_are_shown_as_the_form_takes_them_back(value: object, kind: str,
                                                      text: str) -> None:
    assert format_limit(value, kind) == text


@pytest.mark.parametrize(("host", "scheme", "port", "url"), [
    ("blog.test", "http", 8080, "http://blog.test:8080/"),
    ("blog.test", "http", 80, "http://blog.test/"),
    ("blog.test", "https", 443, "https://blog.test/"),
    ("example.com/api", "http", None, "http://example.com/api"),
])
def test_app_links_go_through_the_dashboards_own_proxy_port(host: str, scheme: str,
                                                            port: int | None, url: str) -> None:
    assert app_url(host, scheme, port) == url


def test_the_launcher_execs_this_bindrop_against_the_api() -> None:
    text = build_launcher("/opt/my python/bin/python3", "http://127.0.0.1:7300").decode()
    assert text.startswith("#!/bin/sh\n")
    assert text.endswith("exec '/opt/my python/bin/python3' -m bindrop dashboard serve "
                         "--server http://127.0.0.1:7300\n")
    assert build_launcher("/p", "http://a:1") == build_launcher("/p", "http://a:1")
    with pytest.raises(InvalidInput):
        build_launcher("python3", "http://127.0.0.1:7300")
    with pytest.raises(InvalidInput):
        build_launcher("/p", "unix:/run/bindrop/control.sock")


def test_only_paths_inside_homes_and_temporary_folders_are_bound_in() -> None:
    assert build_read_only_paths(["/usr", "/opt/venv", "/homework", "/tmpfoo"]) == ()
    assert build_read_only_paths(["/tmp/ci-clone/.venv", "/var/tmp/x"]) == (
        "/tmp/ci-clone/.venv", "/var/tmp/x")
    assert build_read_only_paths([
        "/root/.pyenv/versions/3.11.7", "/root/.pyenv/versions/3.11.7/bin/python3.11",
        "/home/ann/venv/", "/root/.pyenv/versions/3.11.7"]) == (
        "/root/.pyenv/versions/3.11.7", "/home/ann/venv")


@pytest.mark.parametrize("bad", ["", "a b", "dash.example.com/x", 3])
def test_the_dashboard_host_is_a_whole_host(bad: object) -> None:
    with pytest.raises(InvalidInput):
        parse_dashboard_host(bad)
    assert parse_dashboard_host("Dash.Example.COM") == "dash.example.com"


def test_a_system_app_with_paths_in_homes_sees_only_those() -> None:
    release = ReleaseSpec("1", "/var/lib/bindrop/blobs/x", (), 20000)
    plain = {p.name: p.value for p in build_app_unit(AppSpec("a"), release, Settings()).properties}
    assert plain["ProtectHome"] == "yes" and "BindReadOnlyPaths" not in plain
    spec = build_app_unit(AppSpec("a", system=True, read_only_paths=("/root/.pyenv",)),
                          release, Settings())
    props = {p.name: p.value for p in spec.properties}
    assert props["ProtectHome"] == "tmpfs"
    assert props["BindReadOnlyPaths"] == [("/root/.pyenv", "/root/.pyenv", False, 0)]
    assert "BindReadOnlyPaths=/root/.pyenv" in render_unit_file(spec)
    with pytest.raises(InvalidInput):
        AppSpec("a", read_only_paths=("relative",))


@pytest.mark.parametrize(("scheme", "host", "secure"), [
    ("https", "dash.example.com", True), ("http", "dashboard.localhost:8080", True),
    ("http", "localhost", True), ("http", "127.0.0.1:9000", True),
    ("http", "dash.example.com", False), ("http", "localhost.example.com", False),
])
def test_plain_http_keeps_secure_cookies_only_on_localhost(scheme: str, host: str,
                                                           secure: bool) -> None:
    assert is_secure_context(scheme, host) is secure


def test_a_new_bindrop_version_makes_a_new_launcher() -> None:
    assert build_launcher("/p", "http://a:1", "1.0") != build_launcher("/p", "http://a:1", "1.1")
    assert b"# bindrop 1.1\n" in build_launcher("/p", "http://a:1", "1.1")


def test_nice_ceilings_round_up_to_1_2_2_5_or_5() -> None:
    from bindrop.dashboard.charts import nice_ceiling
    assert [nice_ceiling(v) for v in (0, 0.7, 1, 1.2, 2.2, 3, 7, 4200)] == [
        1, 1, 1, 2, 2.5, 5, 10, 5000]


def test_a_chart_escapes_marks_breaks_lines_at_gaps_and_counts_its_points() -> None:
    from bindrop.dashboard.charts import Chart, Line, render_chart
    chart = Chart("Requests <x>", [Line("requests", [1.0, None, 2.0, 3.0], "line-requests")],
                  str, "3")
    svg = render_chart(chart, [0, 10, 20, 30], 10, [
        {"t": 15, "kind": "deploy_succeeded", "message": "<script>alert(1)</script>"},
        {"t": 999, "kind": "app_stopped", "message": "outside the span"}])
    assert 'data-points="3"' in svg
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 1  # 1 | gap | 2, 3
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'aria-label="Requests &lt;x&gt;"' in svg
    assert svg.count('class="mark') == 1


def test_charts_of_a_series_show_no_figure_where_nothing_ran() -> None:
    from bindrop.dashboard.charts import build_charts
    empty = {"requests": 0, "errors": 0, "p50": None, "p95": None, "memory": None,
             "cpu_seconds": 0.0}
    busy = {"requests": 20, "errors": 2, "p50": 0.004, "p95": 0.02, "memory": 2048,
            "cpu_seconds": 1.0}
    charts = build_charts({"step": 10, "points": [empty, busy], "marks": []})
    requests, errors, latency, memory, cpu = charts
    assert requests.lines[0].values == [None, 2.0] and requests.now == "2.00/s"
    assert errors.lines[0].values == [None, 10.0] and errors.now == "10%"
    assert latency.now == "4 ms / 20 ms"
    assert memory.now == "2.0 KiB"
    assert cpu.lines[0].values == [None, 10.0]
