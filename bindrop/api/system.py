"""Who is calling, bindrop's own services and apps, and the recorded event history.

What the dashboard needs beyond the app routes: ``whoami`` (is this token valid, and may it
change things), the state of bindrop's own units, a page of past events, and setting up the
dashboard itself (``bindrop install`` calls it).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bindrop.api.bodies import only, query_int, read_json
from bindrop.api.keys import CALLER, HUB, STORE
from bindrop.api.views import event_dict
from bindrop.domain.names import validate_app_name
from bindrop.errors import BindropError, Conflict, InvalidInput
from bindrop.hub.system import DASHBOARD_APP

#: bindrop's own installed units (those not installed on this server are left out).
SERVICE_PATTERNS = ("bindrop.service", "bindrop-proxy*", "bindrop-backup*", "bindrop-disk*",
                    "bindrop-tls*")


async def whoami(request: web.Request) -> dict[str, Any]:
    caller = request[CALLER]
    return {"name": caller.name, "scope": caller.scope, "admin": caller.admin}


async def services(request: web.Request) -> dict[str, Any]:
    """bindrop's own units as systemd sees them now (not the apps: see /v1/apps)."""
    hub = request.app[HUB]
    try:
        listing = await hub.manager.list_units(list(SERVICE_PATTERNS))
    except BindropError as exc:
        raise Conflict(f"could not ask systemd about bindrop's services: {exc.message}") from None
    return {"services": [{"unit": u.name, "description": u.description,
                          "active_state": str(u.active_state), "sub_state": str(u.sub_state)}
                         for u in sorted(listing, key=lambda u: u.name)]}


async def history(request: web.Request) -> dict[str, Any]:
    """The newest recorded events, oldest first (the live stream is /v1/events)."""
    store = request.app[STORE]
    app = request.query.get("app")
    if app is not None:
        validate_app_name(app)
    limit = query_int(request.query, "limit", 50, 1, 500)
    return {"events": [event_dict(e) for e in store.list_events(app, limit=limit)]}


async def setup_dashboard(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    only(body, frozenset({"host"}), "the dashboard's settings")
    if "host" not in body:
        raise InvalidInput("give the dashboard's host, e.g. {\"host\": \"dashboard.localhost\"}")
    hub = request.app[HUB]
    if hub.settings.api_port == 0:
        raise Conflict("the dashboard needs the control API on a fixed TCP port; this hub "
                       "listens on a random one (--api-port 0)")
    return (await hub.system_apps.ensure_dashboard(body["host"])).to_dict() | {"app": DASHBOARD_APP}
