"""Disk checks over a threshold: an event in the hub on each change; the disk report; gc."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from bindrop.api import ApiServer
from bindrop.hub.hub import Hub
from bindrop.machine import Machine
from bindrop.settings import Settings

from .carekit import bindrop, care_env, ok_json

pytestmark = pytest.mark.integration


async def test_disk_check_records_an_event_when_usage_goes_over_and_back_under(
    machine: Machine, settings: Settings, hub: Hub, api: ApiServer
) -> None:
    env = care_env(machine, settings, api)
    # Any used disk is over a 0.1 % threshold; none is over 100 %.
    under = ok_json(await bindrop(env, "disk", "check", "--threshold", "100", "--json"))
    assert under["over"] == []
    for _ in range(2):  # a state that holds is not a new event
        over = ok_json(await bindrop(env, "disk", "check", "--threshold", "0.1", "--json"))
        assert over["over"] and over["filesystems"][0]["percent"] > 0.1
    back = ok_json(await bindrop(env, "disk", "check", "--threshold", "100", "--json"))
    assert back["over"] == []
    kinds = [e.kind for e in hub.store.list_events() if e.kind.startswith("disk_")]
    assert kinds == ["disk_over_threshold", "disk_back_under"]
    status = ok_json(await bindrop(env, "status", "--json"))
    assert status["care"]["disk"]["kind"] == "disk_back_under"
    # Each check is a sample the disk page shows as a trend.
    assert len(ok_json(await bindrop(env, "disk", "--json"))["samples"]) == 4


async def test_disk_shows_bindrops_parts(
    machine: Machine, settings: Settings, api: ApiServer
) -> None:
    env = care_env(machine, settings, api)
    shown = ok_json(await bindrop(env, "disk", "--json"))
    assert {"database", "blobs", "backups", "journal", "apps"} <= set(shown["parts"])
    assert shown["parts"]["database"] > 0
    assert {h for f in shown["filesystems"] for h in f["holds"]} == {
        "data", "apps", "backups", "journal"}
    text = await bindrop(env, "disk")
    assert text.exit_code == 0 and "USE%" in text.output


async def test_gc_frees_unused_old_blobs_and_backups_beyond_retention(
    machine: Machine, settings: Settings, hub: Hub, api: ApiServer
) -> None:
    env = care_env(machine, settings, api)
    # Care settings are the server's: the hub's environment (care.env on a server).
    hub.care_runs.environ.update(BINDROP_BACKUP_KEEP_DAILY="1", BINDROP_BACKUP_KEEP_WEEKLY="0")
    settings.blobs_dir.mkdir(parents=True, exist_ok=True)
    orphan = settings.blobs_dir / ("ab" * 32)
    orphan.write_bytes(b"x" * 5000)
    fresh = settings.blobs_dir / ("cd" * 32)
    fresh.write_bytes(b"y" * 100)
    hour_ago = time.time() - 7200
    os.utime(orphan, (hour_ago, hour_ago))
    # A backup, and a copy of it as if made two days before (same day: only the newest of
    # a day is a daily). gc with 1 daily and no weekly deletes the older.
    second = ok_json(await bindrop(env, "backup", "run", "--json"))["id"]
    first = "20200101T000000.000Z-server"
    shutil.copytree(settings.backups_dir / second, settings.backups_dir / first)
    manifest = settings.backups_dir / first / "manifest.json"
    manifest.write_text(manifest.read_text().replace(second, first))
    assert [b["id"] for b in ok_json(await bindrop(env, "backup", "list", "--json"))] == [
        first, second]
    (settings.backups_dir / ".x.partial").mkdir()
    freed = ok_json(await bindrop(env, "gc", "--json"))
    assert freed["blobs"] == 1 and freed["blob_bytes"] == 5000
    assert freed["backups"] == [first] and freed["total_bytes"] > 5000
    assert not orphan.exists() and fresh.exists()
    assert sorted(p.name for p in Path(settings.backups_dir).iterdir()) == [".lock", second]
