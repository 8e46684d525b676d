"""Apps: list, create, show, change, destroy, and the live status of one."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bindrop.api.bodies import parse_changes, parse_new_app, query_flag, read_json
from bindrop.api.keys import HUB, STORE
from bindrop.api.views import app_dict, metrics_dict, view_dict
from bindrop.errors import BindropError
from bindrop.hub.config import UPDATABLE
from bindrop.hub.hub import Hub


def _hub(request: web.Request) -> Hub:
    return request.app[HUB]


def _name(request: web.Request) -> str:
    return request.match_info["app"]


def _with_state(hub: Hub, config_dict: dict[str, Any]) -> dict[str, Any]:
    return config_dict | {"live": view_dict(hub.state.app(config_dict["name"]))}


async def list_apps(request: web.Request) -> dict[str, Any]:
    hub = _hub(request)
    store = request.app[STORE]
    every = query_flag(request.query, "all")
    return {"apps": [_with_state(hub, app_dict(a))
                     for a in store.list_apps(include_system=every)]}


async def create_app(request: web.Request) -> dict[str, Any]:
    hub = _hub(request)
    config = parse_new_app(await read_json(request))
    return _with_state(hub, app_dict(hub.config.create_app(config)))


async def show_app(request: web.Request) -> dict[str, Any]:
    hub = _hub(request)
    store = request.app[STORE]
    return _with_state(hub, app_dict(store.get_app(_name(request))))


async def update_app(request: web.Request) -> dict[str, Any]:
    hub = _hub(request)
    store = request.app[STORE]
    name = _name(request)
    store.get_app(name)
    changes = parse_changes(await read_json(request), UPDATABLE, "an app's settings")
    config, outcome = await hub.config.update_app(name, changes)
    return _with_state(hub, app_dict(config)) | {
        "restarted": outcome.to_dict() if outcome else None}


async def destroy_app(request: web.Request) -> dict[str, Any]:
    hub = _hub(request)
    purge = query_flag(request.query, "purge_data")
    return (await hub.config.destroy_app(_name(request), purge_data=purge)).to_dict()


async def app_status(request: web.Request) -> dict[str, Any]:
    """Config, live state from the hub, and metrics of the live unit (read now)."""
    hub = _hub(request)
    store = request.app[STORE]
    config = store.get_app(_name(request))
    view = hub.state.app(config.name)
    metrics = None
    if view is not None and view.route is not None:
        try:
            metrics = metrics_dict(await hub.manager.read_unit_metrics(view.route.unit))
        except BindropError:  # the unit went away meanwhile
            metrics = None
    releases = store.list_releases(config.name)
    return {
        "app": app_dict(config),
        "live": view_dict(view),
        "metrics": metrics,
        "releases": len(releases),
        "url": f"http://{config.hosts[0]}/" if config.hosts else None,
    }
