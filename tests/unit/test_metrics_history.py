"""The hub's traffic history: 10 s points in memory, minutes in SQLite, pruned by age."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bindrop.hub.metrics import MINUTE, RETENTION, Metrics
from bindrop.hub.pubsub import AppDestroyed, PubSub
from bindrop.hub.state import StateStore
from bindrop.hub.traffic import Traffic
from bindrop.store import Store

T0 = 1_800_000_000  # a whole hour


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "bindrop.db") as store:
        yield store


def history(store: Store) -> Metrics:
    # No unit runs in this state store, so systemd (the manager) is never asked.
    return Metrics(StateStore(), store, None, PubSub())  # type: ignore[arg-type]


def traffic(requests: int, status_class: str = "2xx") -> Traffic:
    latency = [0] * 12
    latency[0] = requests
    return Traffic(requests=requests, classes={status_class: requests}, latency=latency)


async def test_a_finished_minute_is_written_and_read_back_beyond_the_hour(
        store: Store) -> None:
    metrics = history(store)
    for i in range(6):
        metrics.record_traffic([("blog", "1", traffic(i + 1))])
        metrics.record_traffic([("blog", "2", traffic(1, "5xx"))])
        await metrics.sample(T0 + (i + 1) * 10)
    assert metrics.totals[("blog", "1")].requests == 21
    assert metrics.totals[("blog", "2")].classes == {"5xx": 6}
    recent = metrics.series("blog", T0, T0 + MINUTE, 10)
    assert [p.traffic.requests for p in recent] == [2, 3, 4, 5, 6, 7]
    rows = store.read_metric_minutes("blog", T0, T0 + MINUTE)
    assert len(rows) == 1 and rows[0]["requests"] == 27
    assert rows[0]["classes"] == {"2xx": 21, "5xx": 6}
    # A span beyond memory's hour reads the minute from SQLite.
    day = metrics.series("blog", T0 - 86400 + MINUTE, T0 + MINUTE, 3600)
    assert sum(p.traffic.requests for p in day) == 27


async def test_an_app_without_traffic_or_units_gets_no_point(store: Store) -> None:
    metrics = history(store)
    await metrics.sample(T0 + 10)
    assert metrics.apps() == []
    assert [p.traffic.requests for p in metrics.series("blog", T0, T0 + 20, 10)] == [0, 0]


def test_minutes_older_than_the_retention_are_pruned(store: Store) -> None:
    row = {"app": "blog", "requests": 1, "classes": {}, "gateway": {}, "bytes_in": 0,
           "bytes_out": 0, "latency_sum": 0.0, "latency": [0] * 12, "memory": None,
           "cpu_ns": 0, "tasks": None}
    store.write_metric_minutes([row | {"t": T0 - RETENTION - MINUTE}, row | {"t": T0}])
    assert store.prune_metric_minutes(T0 - RETENTION) == 1
    assert [r["t"] for r in store.read_metric_minutes("blog", 0, T0 + MINUTE)] == [T0]


async def test_a_destroyed_app_leaves_no_history_for_a_new_app_of_its_name(
        store: Store) -> None:
    from bindrop.store import AppConfig
    store.create_app(AppConfig(name="blog", hosts=("blog.test",)))
    metrics = history(store)
    metrics.start()
    try:
        metrics.record_traffic([("blog", "1", traffic(5))])
        for i in range(6):
            await metrics.sample(T0 + (i + 1) * 10)
        assert store.read_metric_minutes("blog", T0, T0 + MINUTE)
        metrics.events.publish(AppDestroyed("blog"))  # what the hub does
        assert metrics.apps() == []
        assert not store.read_metric_minutes("blog", T0, T0 + MINUTE)
        assert sum(p.traffic.requests for p in metrics.series("blog", T0, T0 + 60, 10)) == 0
    finally:
        await metrics.close()


async def test_a_minute_is_written_even_when_the_sample_at_its_end_was_missed(
        store: Store) -> None:
    metrics = history(store)
    metrics.record_traffic([("blog", "1", traffic(4))])
    await metrics.sample(T0 + 50)
    await metrics.sample(T0 + 70)  # the sample at T0 + 60 never ran
    assert [r["requests"] for r in store.read_metric_minutes("blog", T0, T0 + MINUTE)] == [4]


async def test_after_a_restart_the_last_hour_comes_from_the_minutes_in_whole_minutes(
        store: Store) -> None:
    before = history(store)
    before.record_traffic([("blog", "1", traffic(7))])
    for i in range(6):
        await before.sample(T0 + (i + 1) * 10)
    after = history(store)  # a new hub: nothing in memory
    after.record_traffic([("blog", "1", traffic(2))])
    await after.sample(T0 + 130)
    points = after.series("blog", T0, T0 + 180, 10)
    assert {p.step for p in points} == {MINUTE}
    assert [p.traffic.requests for p in points] == [7, 0, 2]


async def test_a_release_quiet_for_an_hour_and_not_live_leaves_the_totals(
        store: Store) -> None:
    metrics = history(store)
    metrics.record_traffic([("blog", "1", traffic(1)), ("blog", "2", traffic(1))])
    await metrics.sample(T0 + 10)
    metrics.record_traffic([("blog", "2", traffic(1))])
    await metrics.sample(T0 + 1800)
    await metrics.sample(T0 + 3600)
    assert set(metrics.totals) == {("blog", "1"), ("blog", "2")}
    await metrics.sample(T0 + 3660)
    assert set(metrics.totals) == {("blog", "2")}


async def test_memory_that_starts_mid_minute_keeps_10_s_steps_once_that_minute_is_written(
        store: Store) -> None:
    # An app first seen 30 s into a minute: when the minute ends it is written to SQLite too,
    # which is not older history that memory lacks (found when a test crossed a minute).
    metrics = history(store)
    for i in range(3, 9):
        metrics.record_traffic([("blog", "1", traffic(1))])
        await metrics.sample(T0 + (i + 1) * 10)
    assert store.read_metric_minutes("blog", T0, T0 + MINUTE)
    points = metrics.series("blog", T0 - 600, T0 + 90, 10)
    assert {p.step for p in points} == {10}
    assert sum(p.traffic.requests for p in points) == 6
