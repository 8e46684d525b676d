"""Disk check over a threshold: an event in the hub and a JSON POST to a webhook; gc."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bindrop.api import ApiServer
from bindrop.hub.hub import Hub
from bindrop.machine import Machine
from bindrop.settings import Settings

from .carekit import bindrop, care_env, ok_json

pytestmark = pytest.mark.integration


async def test_disk_check_over_threshold_records_an_event_and_posts_the_webhook(
    machine: Machine, settings: Settings, hub: Hub, api: ApiServer
) -> None:
    received: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        env = care_env(machine, settings, api,
                       BINDROP_DISK_WEBHOOK=f"http://127.0.0.1:{port}/hook")
        # Any used disk is over a 0.1 % threshold; none is over 100 %.
        under = ok_json(await bindrop(env, "disk", "check", "--threshold", "100", "--json"))
        assert under["over"] == [] and under["webhook"] is False
        over = ok_json(await bindrop(env, "disk", "check", "--threshold", "0.1", "--json"))
        assert over["over"] and over["webhook"] is True
        back = ok_json(await bindrop(env, "disk", "check", "--threshold", "100", "--json"))
        assert back["over"] == []
    finally:
        await runner.cleanup()
    assert len(received) == 1
    assert received[0]["event"] == "disk_over_threshold"
    assert received[0]["threshold"] == 0.1 and received[0]["filesystems"][0]["percent"] > 0.1
    kinds = [e.kind for e in hub.store.list_events()]
    assert kinds[-2:] == ["disk_over_threshold", "disk_back_under"]
    status = ok_json(await bindrop(env, "status", "--json"))
    assert status["care"]["disk"]["kind"] == "disk_back_under"


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
