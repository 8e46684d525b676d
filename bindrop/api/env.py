"""An app's environment (masked unless revealed to an admin) and its limits.

A change restarts the app (zero downtime) when it runs; the answer says so.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bindrop.api.auth import require_admin
from bindrop.api.bodies import LIMIT_FIELDS, parse_changes, parse_env, query_flag, read_json
from bindrop.api.keys import CALLER, HUB, STORE
from bindrop.api.views import app_dict
from bindrop.errors import InvalidInput
from bindrop.hub.lifecycle import Outcome
from bindrop.store import Store, mask_env


def _env(store: Store, app: str, reveal: bool, outcome: Outcome | None = None
         ) -> dict[str, Any]:
    env = store.get_env(app)
    return {"app": app, "env": env if reveal else mask_env(env), "masked": not reveal,
            "restarted": outcome.to_dict() if outcome else None}


async def show_env(request: web.Request) -> dict[str, Any]:
    reveal = query_flag(request.query, "reveal")
    if reveal:
        require_admin(request[CALLER], "reveal environment values")
    return _env(request.app[STORE], request.match_info["app"], reveal)


async def set_env(request: web.Request) -> dict[str, Any]:
    hub = request.app[HUB]
    store = request.app[STORE]
    app = request.match_info["app"]
    store.get_app(app)
    values = parse_env(await read_json(request))
    outcome = await hub.config.set_env(app, values)
    return _env(request.app[STORE], app, False, outcome)


async def unset_env(request: web.Request) -> dict[str, Any]:
    hub = request.app[HUB]
    app = request.match_info["app"]
    keys = request.query.getall("key", [])
    if not keys:
        raise InvalidInput("name the variables to unset: ?key=NAME (repeat for more)")
    outcome = await hub.config.unset_env(app, keys)
    return _env(request.app[STORE], app, False, outcome)


async def set_limits(request: web.Request) -> dict[str, Any]:
    """Only the limits named change; null removes one."""
    hub = request.app[HUB]
    store = request.app[STORE]
    app = request.match_info["app"]
    store.get_app(app)
    changes = parse_changes(await read_json(request), frozenset(LIMIT_FIELDS), "limits")
    if not changes:
        raise InvalidInput('name a limit to change: memory_max, cpu_quota or tasks_max, e.g. '
                           '{"memory_max": "256M"}')
    config, outcome = await hub.config.update_app(app, changes)
    return {"app": app_dict(config),
            "restarted": outcome.to_dict() if outcome else None}
