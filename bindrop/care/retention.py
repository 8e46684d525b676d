"""Which backups to keep: the newest of each of the last N days and of the last M weeks. Pure.

A backup kept as a daily may also be the week's: the two rules are a union, as in restic's and
borg's ``--keep-daily``/``--keep-weekly``. Days and ISO weeks are counted in UTC over the days
and weeks that *have* backups, so a server off for a week still keeps N backups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Dated:
    """A backup's id and when it was made (UTC)."""

    id: str
    at: datetime


def plan_retention(backups: Sequence[Dated], keep_daily: int, keep_weekly: int) -> list[str]:
    """The ids to delete, oldest first. Each scope (a server backup, one app's) is planned on
    its own by the caller. Never deletes the newest backup."""
    newest_first = sorted(backups, key=lambda b: (b.at, b.id), reverse=True)
    keep: set[str] = set()
    for period, count in ((_day, keep_daily), (_week, keep_weekly)):
        seen: list[object] = []
        for backup in newest_first:
            key = period(backup.at)
            if key in seen:
                continue
            if len(seen) >= count:
                break
            seen.append(key)
            keep.add(backup.id)
    if newest_first:
        keep.add(newest_first[0].id)
    return [b.id for b in reversed(newest_first) if b.id not in keep]


def _day(at: datetime) -> object:
    return at.date()


def _week(at: datetime) -> object:
    iso = at.isocalendar()
    return (iso.year, iso.week)
