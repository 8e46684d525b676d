"""Actions on an app (deploy, start, stop, restart, rollback) and the jobs of those not
awaited.

An action answers with the hub's ``Outcome`` once it is done, or at once with a job id when
asked ``?wait=0``; ``GET /v1/jobs/{id}`` tells how it ended.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from bindrop.api.bodies import only, parse_limit, query_flag, read_json
from bindrop.api.keys import HUB, JOBS
from bindrop.domain.releases import parse_release_number
from bindrop.errors import InvalidInput
from bindrop.hub.commands import Command, Deploy, Restart, Rollback, Start, Stop, describe
from bindrop.hub.lifecycle import Outcome


async def _act(request: web.Request, command: Command) -> dict[str, Any]:
    hub = request.app[HUB]
    app = request.match_info["app"]
    wait = query_flag(request.query, "wait", default=True)
    future = hub.submit(app, command)
    if not wait:
        job = request.app[JOBS].add(app, describe(command).split()[0], future)
        return {"job": job.id}
    # Shielded: a client that goes away (handlers are cancelled then) does not take the
    # action with it; it runs to the end and is recorded, only the answer is lost.
    outcome: Outcome = await asyncio.shield(future)
    return outcome.to_dict()


async def deploy(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    only(body, {"release", "rolling"}, "a deploy")
    rolling = body.get("rolling", False)
    if not isinstance(rolling, bool):
        raise InvalidInput("rolling must be true or false")
    return await _act(request, Deploy(parse_release_number(body.get("release")),
                                      rolling=rolling))


async def rollback(request: web.Request) -> dict[str, Any]:
    body = await read_json(request, required=False)
    only(body, {"to"}, "a rollback")
    to = body.get("to")
    return await _act(request, Rollback(None if to is None else parse_release_number(to, "to")))


async def start(request: web.Request) -> dict[str, Any]:
    return await _act(request, Start())


async def stop(request: web.Request) -> dict[str, Any]:
    return await _act(request, Stop())


async def restart(request: web.Request) -> dict[str, Any]:
    return await _act(request, Restart())


async def scale(request: web.Request) -> dict[str, Any]:
    """Body: ``{"counts": {"web": 3}, "memory_max": {"worker": "256M"},
    "health_path": {"web": "/up"}}`` (each part optional, one needed)."""
    hub = request.app[HUB]
    body = await read_json(request)
    only(body, {"counts", "memory_max", "health_path"}, "a scale")
    counts = body.get("counts") or {}
    memory = body.get("memory_max")
    health = body.get("health_path")
    for name, part in (("counts", counts), ("memory_max", memory), ("health_path", health)):
        if part is not None and not isinstance(part, dict):
            raise InvalidInput(f"{name} must be an object of process names")
    memory_max = None if memory is None else {
        k: parse_limit("memory_max", v) for k, v in memory.items()}
    outcome = await asyncio.shield(asyncio.ensure_future(hub.config.scale(
        request.match_info["app"], counts, memory_max=memory_max, health_path=health)))
    return outcome.to_dict()


async def processes(request: web.Request) -> dict[str, Any]:
    return request.app[HUB].config.processes(request.match_info["app"])


async def show_job(request: web.Request) -> dict[str, Any]:
    return request.app[JOBS].get(request.match_info["job"]).to_dict()
