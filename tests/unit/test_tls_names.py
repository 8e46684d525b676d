"""Which names get certificates, which are due, how each stands: pure rules, as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bindrop.hub.tlsnames import (
    CertInfo,
    backoff_delay,
    build_name_state,
    build_wanted_names,
    can_have_certificate,
    plan_due,
)
from bindrop.store import AppConfig

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("host", "public"), [
    ("blog.example.com", True), ("BLOG.Example.COM.", True), ("a.b.example.co.uk", True),
    ("localhost", False), ("app.localhost", False), ("127.0.0.1", False), ("[::1]", False),
    ("::1", False), ("intranet", False), ("*.example.com", False), ("", False),
])
def test_only_names_a_public_ca_could_validate_get_certificates(host: str, public: bool) -> None:
    assert can_have_certificate(host) is public


def test_wanted_names_share_a_host_across_path_prefixes_and_skip_no_tls_apps() -> None:
    apps = [AppConfig(name="blog", hosts=("example.com/blog", "blog.localhost")),
            AppConfig(name="site", hosts=("example.com", "www.example.com")),
            AppConfig(name="inner", hosts=("inner.example.com",), no_tls=True)]
    wanted = build_wanted_names(apps, ["bindrop.example.com", "bindrop.localhost", None])
    assert wanted == {"bindrop.example.com": None, "example.com": "blog",
                      "www.example.com": "site"}


@pytest.mark.parametrize(("failures", "seconds"), [
    (0, 0), (1, 60), (2, 120), (3, 240), (4, 480), (5, 3600), (6, 3600), (7, 3840),
    (10, 30720), (11, 61440), (12, 86400), (500, 86400),
])
def test_failures_back_off_from_a_minute_doubling_to_a_day(failures: int, seconds: float) -> None:
    assert backoff_delay(failures) == seconds


def test_backoff_never_allows_more_than_five_failures_of_a_name_in_an_hour() -> None:
    times, now = [], 0.0
    for failures in range(1, 30):
        times.append(now)
        now += backoff_delay(failures)
    assert max(sum(1 for t in times if start <= t < start + 3600) for start in times) <= 5


def cert(days: float) -> CertInfo:
    return CertInfo(NOW + timedelta(days=days), "CN=test CA", "1f")


def test_due_are_missing_and_expiring_names_not_backing_off_and_forced_ones() -> None:
    certs = {"fresh.test.com": cert(60), "old.test.com": cert(29), "stale.test.com": cert(-1)}
    later = NOW + timedelta(minutes=5)
    names = ["fresh.test.com", "old.test.com", "stale.test.com", "new.test.com",
             "waiting.test.com"]
    due = plan_due(names, certs, {"waiting.test.com": later, "new.test.com": NOW}, NOW)
    assert due == ["old.test.com", "stale.test.com", "new.test.com"]
    forced = plan_due(names, certs, {"waiting.test.com": later}, NOW,
                      force={"fresh.test.com", "waiting.test.com"})
    assert forced == names


@pytest.mark.parametrize(("days", "working", "failed", "state"), [
    (None, False, False, "pending"), (None, True, True, "pending"),
    (None, False, True, "failed"), (-1, False, True, "failed"), (-1, False, False, "pending"),
    (10, False, False, "valid"), (10, False, True, "valid"), (10, True, False, "renewing"),
])
def test_a_names_state_comes_from_its_certificate_work_and_last_attempt(
        days: float | None, working: bool, failed: bool, state: str) -> None:
    info = None if days is None else cert(days)
    assert build_name_state(info, working=working, failed=failed, now=NOW) == state
