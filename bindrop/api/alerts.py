"""Where alerts go: ``GET/PUT /v1/alerts`` (the webhook) and ``POST /v1/alerts/test``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bindrop.api.bodies import only, read_json
from bindrop.api.keys import HUB, STORE
from bindrop.errors import InvalidInput


async def show(request: web.Request) -> dict[str, Any]:
    return request.app[HUB].alerts.to_dict()


async def set_channel(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    only(body, {"webhook"}, "the alert settings")
    if "webhook" not in body:
        raise InvalidInput("give webhook: an http(s) URL, or null for no alerts")
    hub = request.app[HUB]
    store = request.app[STORE]
    url = store.set_alert_webhook(body["webhook"])
    store.add_event("alerts_changed", None,
                    "alerts go to a webhook" if url else "alerts are off")
    return hub.alerts.to_dict()


async def test(request: web.Request) -> dict[str, Any]:
    alert = await request.app[HUB].alerts.test()
    return {"sent": True, "alert": alert.to_dict()}
