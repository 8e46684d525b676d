"""Alerts to a real local HTTP receiver, counted: one per change, none while a state holds;
retried after a failed delivery; a dead webhook holds nothing up."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from bindrop.api import ApiServer
from bindrop.errors import NotReady
from bindrop.hub.commands import Deploy
from bindrop.hub.hub import Hub
from bindrop.hub.state import AppRunState
from bindrop.settings import Settings
from bindrop.store import BlobStore, Store

from .carekit import bindrop, free_port, ok_json, wait_for
from .hubkit import add_app

pytestmark = pytest.mark.integration

QUIET_S = 1.5  # long enough for a retry (backoff 0.2 s here) to have arrived


@dataclass
class Receiver:
    url: str
    alerts: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    fail_next: int = 0

    def kinds(self) -> list[str]:
        return [a["kind"] for a in self.alerts]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    got = Receiver(f"http://127.0.0.1:{port}/hook")

    async def receive(request: web.Request) -> web.Response:
        got.attempts += 1
        body = await request.json()
        if got.fail_next:
            got.fail_next -= 1
            return web.Response(status=503)
        got.alerts.append(body)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield got
    finally:
        await runner.cleanup()


async def settle(receiver: Receiver, count: int) -> None:
    """Exactly ``count`` alerts arrived, and no more come."""
    await wait_for(lambda: len(receiver.alerts) >= count, timeout=30)
    await asyncio.sleep(QUIET_S)
    assert len(receiver.alerts) == count, receiver.kinds()


async def test_alerts_are_sent_once_per_change_and_retried(
    settings: Settings, hub: Hub, api: ApiServer, receiver: Receiver
) -> None:
    hub.alerts.backoff = (0.2, 0.2, 0.2)
    env = {"BINDROP_SERVER": f"unix:{api.socket_path}", "BINDROP_TOKEN": ""}
    shown = ok_json(await bindrop(env, "alerts", "set", "--webhook", receiver.url, "--json"))
    assert shown["webhook"] == receiver.url
    assert ok_json(await bindrop(env, "alerts", "show", "--json"))["webhook"] == receiver.url

    ok_json(await bindrop(env, "alerts", "test", "--json"))
    await settle(receiver, 1)
    test = receiver.alerts[0]
    assert test["kind"] == "test" and set(test) == {
        "kind", "server", "app", "message", "link", "at"}
    assert test["link"] == "http://dashboard.localhost/server"

    # The disk: under, over, over, under, under: two alerts, the first after one failure.
    for threshold in ("100", "100"):
        ok_json(await bindrop(env, "disk", "check", "--threshold", threshold, "--json"))
    await settle(receiver, 1)
    receiver.fail_next = 1
    for threshold in ("0.1", "0.1"):
        over = ok_json(await bindrop(env, "disk", "check", "--threshold", threshold, "--json"))
        assert over["over"]
    await settle(receiver, 2)
    assert receiver.attempts == 3  # the test, the failed attempt, its retry
    over_alert = receiver.alerts[1]
    assert over_alert["kind"] == "disk_over_threshold" and "% full" in over_alert["message"]
    for threshold in ("100", "100"):
        ok_json(await bindrop(env, "disk", "check", "--threshold", threshold, "--json"))
    await settle(receiver, 3)
    assert receiver.kinds()[2] == "disk_back_under"

    # Backups: failing twice is one alert; succeeding again is one more; then nothing.
    hub.care_runs.environ["BINDROP_BACKUP_DIR"] = "/proc/no-backups-here"
    for _ in range(2):
        failed = await bindrop(env, "backup", "run")
        assert failed.exit_code == 1
    await settle(receiver, 4)
    assert receiver.alerts[3]["kind"] == "backup_failed" and receiver.alerts[3]["app"] is None
    del hub.care_runs.environ["BINDROP_BACKUP_DIR"]
    for _ in range(2):
        ok_json(await bindrop(env, "backup", "run", "--json"))
    await settle(receiver, 5)
    assert receiver.kinds()[4] == "backup_succeeding_again"
    kinds = [e.kind for e in hub.store.list_events()]
    assert kinds.count("disk_over_threshold") == 1 and kinds.count("disk_back_under") == 1


async def test_an_app_that_gave_up_and_came_back_and_a_failed_deploy_alert(
    settings: Settings, hub: Hub, store: Store, blobs: BlobStore, api: ApiServer,
    receiver: Receiver
) -> None:
    hub.alerts.backoff = (0.2,)
    store.set_alert_webhook(receiver.url)
    # Up long enough to be found ready, then restarts that fail at once: systemd's start
    # limit (5 in 10 s) is hit with seconds to spare, even on a loaded machine.
    add_app(store, blobs, "loopy", "--crash-after", "1", "--fail-restarts", uuid.uuid4().hex)
    await hub.call("loopy", Deploy(1))
    await wait_for(lambda: [e for e in store.list_events("loopy") if e.kind == "app_gave_up"],
                   timeout=60)
    await settle(receiver, 1)
    gave_up = receiver.alerts[0]
    assert gave_up["kind"] == "app_gave_up" and gave_up["app"] == "loopy"
    assert gave_up["link"] == "http://dashboard.localhost/apps/loopy"

    add_app(store, blobs, "loopy", "--label", "good")
    await hub.call("loopy", Deploy(2))
    await wait_for(lambda: (v := hub.state.app("loopy")) is not None
                   and v.state == AppRunState.RUNNING)
    await settle(receiver, 2)
    assert receiver.alerts[1]["kind"] == "app_recovered"

    add_app(store, blobs, "loopy", "--fail")
    with pytest.raises(NotReady):
        await hub.call("loopy", Deploy(3))
    await settle(receiver, 3)
    assert receiver.alerts[2]["kind"] == "deploy_failed"
    assert "failing on purpose" in receiver.alerts[2]["message"]


async def test_a_dead_webhook_holds_nothing_up(
    settings: Settings, hub: Hub, api: ApiServer
) -> None:
    hub.alerts.backoff = (5.0, 5.0)
    dead = f"http://127.0.0.1:{free_port()}/hook"
    env = {"BINDROP_SERVER": f"unix:{api.socket_path}", "BINDROP_TOKEN": ""}
    ok_json(await bindrop(env, "alerts", "set", "--webhook", dead, "--json"))
    tested = await bindrop(env, "alerts", "test")
    assert tested.exit_code == 1 and "could not be reached" in tested.output
    for threshold in ("0.1", "100", "0.1", "100"):
        started = time.monotonic()
        ok_json(await bindrop(env, "disk", "check", "--threshold", threshold, "--json"))
        assert time.monotonic() - started < 20
    shown = ok_json(await bindrop(env, "alerts", "show", "--json"))
    assert shown["pending"] >= 1 and shown["sent"] == 0 and shown["last_error"]
    off = ok_json(await bindrop(env, "alerts", "set", "--off", "--json"))
    assert off["webhook"] is None
