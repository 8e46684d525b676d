"""The supersede rules, over every pair of command kinds (a table, read row by row)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bindrop.hub.commands import (
    Check,
    Command,
    Deploy,
    Restart,
    Restore,
    Rollback,
    Scale,
    Start,
    Stop,
    cancels_wait,
    supersedes,
)


class NoSteps:
    async def prepare(self) -> dict[str, Any]:
        return {}

    async def swap(self, prepared: dict[str, Any]) -> dict[str, Any]:
        return prepared

    async def discard(self) -> None:
        return None


KINDS: dict[str, Command] = {
    "start": Start(), "stop": Stop(), "restart": Restart(), "deploy": Deploy(2),
    "rollback": Rollback(), "check": Check(), "restore": Restore(None, NoSteps()),
    "scale": Scale(),
}

# Row: the new command. Columns: the queued one, in KINDS order:
# A restore replaces data the user asked for: nothing drops it, and it drops nothing.
#            start stop restart deploy rollback check restore scale
SUPERSEDES = {
    "start":    (1,    1,   0,      0,     0,       1,    0,      1),
    "stop":     (1,    1,   1,      0,     0,       1,    0,      1),
    "restart":  (1,    1,   1,      0,     0,       1,    0,      1),
    "deploy":   (1,    0,   1,      1,     1,       1,    0,      1),
    "rollback": (1,    0,   1,      1,     1,       1,    0,      1),
    "check":    (0,    0,   0,      0,     0,       1,    0,      0),
    "restore":  (0,    0,   0,      0,     0,       0,    0,      0),
    "scale":    (0,    0,   0,      0,     0,       1,    0,      1),
}

# Row: the new command. Columns: the in-flight one whose readiness wait it cancels.
CANCELS_WAIT = {
    "start":    (0, 0, 0, 0, 0, 0, 0, 0),
    "stop":     (1, 0, 1, 1, 1, 1, 0, 1),
    "restart":  (0, 0, 0, 0, 0, 0, 0, 0),
    "deploy":   (0, 0, 0, 0, 0, 0, 0, 0),
    "rollback": (0, 0, 0, 0, 0, 0, 0, 0),
    "check":    (0, 0, 0, 0, 0, 0, 0, 0),
    "restore":  (0, 0, 0, 0, 0, 0, 0, 0),
    "scale":    (0, 0, 0, 0, 0, 0, 0, 0),
}

PAIRS = list(itertools.product(KINDS, KINDS))


def test_tables_cover_every_pair() -> None:
    assert set(SUPERSEDES) == set(KINDS) == set(CANCELS_WAIT)
    assert all(len(row) == len(KINDS) for row in [*SUPERSEDES.values(), *CANCELS_WAIT.values()])


@pytest.mark.parametrize(("new", "queued"), PAIRS)
def test_supersedes_matches_the_table(new: str, queued: str) -> None:
    expected = bool(SUPERSEDES[new][list(KINDS).index(queued)])
    assert supersedes(KINDS[new], KINDS[queued]) is expected


@pytest.mark.parametrize(("new", "running"), PAIRS)
def test_cancels_wait_matches_the_table(new: str, running: str) -> None:
    expected = bool(CANCELS_WAIT[new][list(KINDS).index(running)])
    assert cancels_wait(KINDS[new], KINDS[running]) is expected


def test_stop_supersedes_queued_restart() -> None:
    assert supersedes(Stop(), Restart())


def test_stop_keeps_a_queued_deploy_because_it_records_the_wanted_build() -> None:
    assert not supersedes(Stop(), Deploy(3))


def test_newer_deploy_replaces_older_queued_deploy() -> None:
    assert supersedes(Deploy(4), Deploy(3))
