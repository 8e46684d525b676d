"""Retention: the newest backup of each of the last N days and M weeks stays; others go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bindrop.care.retention import Dated, plan_retention

START = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)  # a Monday


def daily(days: int, *, per_day: int = 1) -> list[Dated]:
    return [Dated(f"d{d:02}-{n}", START + timedelta(days=d, hours=n))
            for d in range(days) for n in range(per_day)]


@pytest.mark.parametrize(
    ("backups", "keep_daily", "keep_weekly", "deleted"),
    [
        ([], 7, 4, []),
        (daily(3), 7, 4, []),
        # 10 days, keep 7 daily and 0 weekly: the 3 oldest go.
        (daily(10), 7, 0, ["d00-0", "d01-0", "d02-0"]),
        # 2 daily and 4 weekly: day 6 (Sunday, newest of week 1) stays as the week's backup.
        (daily(10), 2, 4, [f"d{d:02}-0" for d in range(10) if d not in (6, 8, 9)]),
        # Two a day: only the day's newest counts as the daily.
        (daily(2, per_day=2), 7, 0, ["d00-0", "d01-0"]),
        # 0 and 0 still keeps the newest.
        (daily(3), 0, 0, ["d00-0", "d01-0"]),
        # 1 daily, 2 weekly over three weeks: newest, and week 2's newest.
        (daily(21), 1, 2, [f"d{d:02}-0" for d in range(21) if d not in (13, 20)]),
    ],
)
def test_retention_keeps_the_newest_per_day_and_week(
    backups: list[Dated], keep_daily: int, keep_weekly: int, deleted: list[str]
) -> None:
    assert plan_retention(backups, keep_daily, keep_weekly) == deleted


def test_days_without_backups_do_not_count() -> None:
    gaps = [Dated(f"b{i}", START + timedelta(days=3 * i)) for i in range(5)]
    assert plan_retention(gaps, 3, 0) == ["b0", "b1"]


def test_order_of_input_does_not_matter() -> None:
    backups = daily(10)
    assert plan_retention(list(reversed(backups)), 7, 4) == plan_retention(backups, 7, 4)
