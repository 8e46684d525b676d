"""Server care as an attacker would use it: webhook credentials, backup ids and restore
sources, floods of care requests; against a real hub on the private systemd."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bindrop.api import ApiServer
from bindrop.client.client import Client
from bindrop.errors import DeliveryFailed
from bindrop.hub.alerts import Alert
from bindrop.hub.hub import Hub
from bindrop.store import Store
from bindrop.store.apps import AppConfig

from .carekit import free_port, wait_for

pytestmark = pytest.mark.integration

SECRETS = ("hunter2", "ops", "SECRETPATH", "tok3n")


def an_alert() -> Alert:
    return Alert("test", "srv", None, "hello", None, datetime.now(UTC).isoformat())


@pytest.fixture
async def redirect_loop() -> AsyncIterator[str]:
    """A webhook that redirects to itself forever (aiohttp gives up: TooManyRedirects)."""
    port = free_port()

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound(str(request.url))

    app = web.Application()
    app.router.add_post("/{tail:.*}", loop)
    app.router.add_get("/{tail:.*}", loop)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://ops:hunter2@127.0.0.1:{port}/hooks/SECRETPATH?key=tok3n"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("url", [
    "http://ops:hunter2@127.0.0.1:99999/hooks/SECRETPATH?key=tok3n",  # an older, unchecked one
    "http://ops:hunter2@127.0.0.1:1/hooks/SECRETPATH?key=tok3n",      # nobody listens
])
async def test_a_failed_delivery_never_says_the_webhook_s_credentials(
        hub: Hub, url: str) -> None:
    with pytest.raises(DeliveryFailed) as failed:
        await hub.alerts.send(an_alert(), url)
    assert not [s for s in SECRETS if s in failed.value.message], failed.value.message


async def test_a_redirect_loop_s_error_never_says_the_webhook_s_path_or_credentials(
        hub: Hub, redirect_loop: str) -> None:
    with pytest.raises(DeliveryFailed) as failed:
        await hub.alerts.send(an_alert(), redirect_loop)
    assert not [s for s in SECRETS if s in failed.value.message], failed.value.message


async def test_alerts_dropped_on_a_bad_webhook_leave_no_credentials_in_the_log_and_the_next_go(
        hub: Hub, store: Store, redirect_loop: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    hub.alerts.backoff = (0.05,)
    # Written as an older bindrop would have taken it (no port check).
    store.db.execute("INSERT INTO alert_channels (kind, url, updated_at) VALUES (?, ?, ?)",
                     ["webhook", "http://ops:hunter2@127.0.0.1:99999/hooks/SECRETPATH?key=tok3n",
                      "2026-01-01T00:00:00+00:00"])
    hub.alerts.notify("deploy_failed", None, "first")
    await wait_for(lambda: hub.alerts.dropped == 1, timeout=30)
    store.db.execute("UPDATE alert_channels SET url = ?", [redirect_loop])
    hub.alerts.notify("deploy_failed", None, "second")
    await wait_for(lambda: hub.alerts.dropped == 2, timeout=60)
    logged = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("bindrop"))
    shown = f"{logged} {hub.alerts.last_error}"
    assert "dropped" in logged
    assert not [s for s in SECRETS if s in shown], shown


async def admin_request(api: ApiServer, token: str, method: str, path: str,
                        body: object = None, **params: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(
            method, f"http://127.0.0.1:{api.tcp_port}{path}", params=params or None,
            data=None if body is None else json.dumps(body),
            headers={"Authorization": f"Bearer {token}",
                     "Content-Type": "application/json"}) as response:
        return response.status, await response.json()


@pytest.fixture
async def admin_token(api: ApiServer) -> str:
    async with Client(f"unix:{api.socket_path}") as admin:
        return str((await admin.create_token("ops"))["token"])


@pytest.mark.parametrize("path", [
    "/v1/backups/..%2F..%2Fetc", "/v1/backups/20261128T081500.123Z-server%2F..%2F..",
    "/v1/backups/20261128T081500.123Z-app-..", "/v1/backups/%2Fetc%2Fpasswd",
    "/v1/backups/20261128T081500.123Z-server%0a",
])
async def test_a_backup_id_that_is_a_path_is_refused_before_anything_reads_it(
        api: ApiServer, admin_token: str, path: str) -> None:
    for method, suffix in (("GET", ""), ("POST", "/verify")):
        status, answer = await admin_request(api, admin_token, method, path + suffix)
        assert status in (400, 404), answer
        assert "error" in answer


@pytest.mark.parametrize("source", [
    "../../../etc", "/etc/passwd", "20261128T081500.123Z-server/../x",
    "20261128T081500.123Z-server\n--help", "--from=/etc", 7, ["x"], {"id": "x"},
])
async def test_a_restore_from_anything_but_a_backup_id_is_refused_and_starts_nothing(
        api: ApiServer, hub: Hub, store: Store, admin_token: str, source: object) -> None:
    store.create_app(AppConfig("victim", ("victim.test",)))
    for path in ("/v1/apps/victim/restore", "/v1/server/restore"):
        status, answer = await admin_request(api, admin_token, "POST", path, {"from": source})
        assert status == 400, answer
    assert hub.care_runs.list() == []


async def test_a_flood_of_care_requests_gets_one_run_and_409s_and_queued_ones_go_one_by_one(
        api: ApiServer, hub: Hub, admin_token: str) -> None:
    answers = await asyncio.gather(*(
        admin_request(api, admin_token, "POST", "/v1/gc", {"dry_run": True}) for _ in range(12)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [202] + [409] * 11, answers
    first = next(a for s, a in answers if s == 202)
    await wait_for(lambda: hub.care_runs.get(first["id"]).done.is_set(), timeout=120)
    most = 0

    async def watch() -> None:
        nonlocal most
        while True:
            most = max(most, sum(r.state == "running" for r in hub.care_runs.list()))
            await asyncio.sleep(0.005)

    watcher = asyncio.ensure_future(watch())
    try:
        queued = await asyncio.gather(*(
            admin_request(api, admin_token, "POST", "/v1/gc", {"dry_run": True}, queue="1",
                          wait="1") for _ in range(4)))
    finally:
        watcher.cancel()
    assert [s for s, _ in queued] == [202] * 4, queued
    assert all(a["state"] == "succeeded" for _, a in queued), queued
    assert len({a["units"][0] for _, a in queued}) == 4
    assert most == 1 and hub.care_runs.current is None


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", "/v1/alerts", {"webhook": 5}),
    ("PUT", "/v1/alerts", {"webhook": "http://u:p@[::1/"}),
    ("PUT", "/v1/alerts", {"webhook": "file:///etc/shadow"}),
    ("PUT", "/v1/alerts", {}),
    ("PUT", "/v1/alerts", {"webhook": "http://h/", "extra": 1}),
    ("POST", "/v1/disk/check", {"threshold": "abc"}),
    ("POST", "/v1/disk/check", {"threshold": True}),
    ("POST", "/v1/disk/check", {"threshold": 1e400}),
    ("POST", "/v1/disk/check", {"threshold": -5}),
    ("POST", "/v1/gc", {"dry_run": "yes"}),
    ("POST", "/v1/backups", {"app": "../../etc"}),
    ("POST", "/v1/backups", {"app": ["x"]}),
    ("POST", "/v1/backups", {"app": "nosuchapp"}),
    ("GET", "/v1/care/runs/..%2F..%2Fetc", None),
])
async def test_bad_care_input_gets_a_clear_4xx_and_changes_nothing(
        api: ApiServer, hub: Hub, store: Store, admin_token: str, method: str, path: str,
        body: object) -> None:
    status, answer = await admin_request(api, admin_token, method, path, body)
    assert 400 <= status < 500, answer
    assert answer["error"]["message"]
    assert hub.care_runs.list() == [] and store.alert_webhook() is None
