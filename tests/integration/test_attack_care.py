"""Server care as an attacker would use it: webhook credentials, backup ids and restore
sources, floods of care requests; against a real hub on the private systemd."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import web

from bindrop.errors import DeliveryFailed
from bindrop.hub.alerts import Alert
from bindrop.hub.hub import Hub
from bindrop.store import Store

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
