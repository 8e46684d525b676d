"""An attacker's view of the control API: what a read-only token, a stranger over TCP and a
flood of requests can do (nothing they should), against a real hub on the private systemd."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from bindrop.api import ApiServer
from bindrop.api.endpoint import Endpoint
from bindrop.api.routes import LOCAL_ROUTES, ROUTES
from bindrop.client.client import Client
from bindrop.hub.hub import Hub
from bindrop.store import Store

from .hubkit import HELLO

pytestmark = pytest.mark.integration

BACKUP_ID = "20261128T081500.123Z-app-victim"
#: A body that passes each write route's own validation, so a refusal is the scope's.
BODIES: dict[str, Any] = {
    "/v1/dashboard": {"host": "dash.test"},
    "/v1/apps": {"name": "intruder", "hosts": ["intruder.test"]},
    "/v1/apps/{app}": {"no_overlap": True},
    "/v1/apps/{app}/deploy": {"release": 1},
    "/v1/apps/{app}/rollback": {},
    "/v1/apps/{app}/scale": {"counts": {"web": 3}},
    "/v1/apps/{app}/run": {"args": ["sh", "-c", "touch /tmp/pwned"]},
    "/v1/apps/{app}/env": {"PWNED": "1"},
    "/v1/apps/{app}/limits": {"memory_max": "64M"},
    "/v1/apps/{app}/cron": {"schedule": "hourly", "args": ["--x"]},
    "/v1/backups": {},
    "/v1/apps/{app}/restore": {"from": BACKUP_ID},
    "/v1/server/restore": {},
    "/v1/gc": {"dry_run": False},
    "/v1/disk/check": {"threshold": 1},
    "/v1/alerts": {"webhook": "http://127.0.0.1:9/steal"},
    "/v1/events": {"kind": "backup_failed", "message": "forged"},
    "/v1/tokens": {"name": "mine"},
    "/v1/care/steps/{step}/report": {"error": {"code": "x", "message": "forged"}},
}
PATH_VALUES = {"app": "victim", "backup": BACKUP_ID, "run": "1", "job": "1", "name": "nightly",
               "step": "1"}


def concrete(route: Endpoint) -> str:
    return route.path.format(**PATH_VALUES)


#: Writes that touch only the caller's own login (a dashboard session standing for the
#: caller's token, with the token's scope): open to read-only tokens on purpose.
OWN_LOGIN = {("POST", "/v1/sessions"), ("DELETE", "/v1/sessions/current")}


def writes() -> list[Endpoint]:
    return [r for r in (*ROUTES, *LOCAL_ROUTES)
            if r.method != "GET" and (r.method, r.path) not in OWN_LOGIN]


def test_every_route_that_changes_something_is_for_admins_only() -> None:
    assert [f"{r.method} {r.path}" for r in writes() if not r.admin] == []
    assert {(r.method, r.path) for r in ROUTES if not r.admin and r.method != "GET"} == OWN_LOGIN


async def test_a_read_only_tokens_session_is_read_only_too(api: ApiServer) -> None:
    async with Client(f"unix:{api.socket_path}") as admin:
        token = (await admin.create_token("viewer-session", read_only=True))["token"]
    base = f"http://127.0.0.1:{api.tcp_port}"
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/v1/sessions",
                                headers={"Authorization": f"Bearer {token}"}) as made:
            assert made.status == 201
            login = await made.json()
        assert login["admin"] is False
        as_session = {"Authorization": f"Bearer {login['session']}",
                      "Content-Type": "application/json"}
        async with session.post(f"{base}/v1/apps", headers=as_session,
                                data=json.dumps({"name": "x", "hosts": ["x.test"]})) as refused:
            assert refused.status == 403
        async with session.post(f"{base}/v1/sessions", headers=as_session) as again:
            assert again.status == 403  # a session cannot mint another (it would never end)


def snapshot(store: Store, hub: Hub) -> dict[str, Any]:
    """Everything an attacker's write would change."""
    app = store.get_app("victim")
    return {"apps": [a.name for a in store.list_apps(include_system=True)],
            "victim": (app.hosts, app.no_overlap, app.limits, app.current_release),
            "env": store.get_env("victim"), "processes": store.get_processes("victim"),
            "tokens": [(t.name, t.revoked) for t in store.list_tokens()],
            "webhook": store.alert_webhook(), "events": len(store.list_events(limit=500)),
            "care_runs": len(hub.care_runs.list()),
            "units": sorted(u for u in hub.state.snapshot().units
                            if "victim" in u or "care" in u)}


@pytest.mark.parametrize("route", writes(), ids=lambda r: f"{r.method} {r.path}")
async def test_a_read_only_token_is_refused_every_write_and_nothing_changes(
        api: ApiServer, hub: Hub, store: Store, route: Endpoint) -> None:
    async with Client(f"unix:{api.socket_path}") as admin:
        await admin.create_app({"name": "victim", "hosts": ["victim.test"]})
        await admin.upload_release("victim", HELLO)
        await admin.set_env("victim", {"SECRET": "s3cret"})
        token = (await admin.create_token("viewer", read_only=True))["token"]
    before = snapshot(store, hub)
    body = BODIES.get(route.path, {})
    async with aiohttp.ClientSession() as session, session.request(
            route.method, f"http://127.0.0.1:{api.tcp_port}{concrete(route)}",
            data=json.dumps(body) if route.body != "binary" else HELLO.read_bytes(),
            params={"key": "SECRET", "wait": "1"} if route.method == "DELETE" else None,
            headers={"Authorization": f"Bearer {token}",
                     "Content-Type": "application/json"}) as response:
        answer = await response.json()
    local_only = route in LOCAL_ROUTES
    assert response.status == (404 if local_only else 403), answer
    if not local_only:
        assert answer["error"]["code"] == "forbidden"
    await asyncio.sleep(0.2)  # anything started in the background would show by now
    assert snapshot(store, hub) == before
