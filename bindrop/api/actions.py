"""Actions on an app (deploy, start, stop, restart, rollback) and the jobs of those not
awaited.

An action answers with the hub's ``Outcome`` once it is done, or at once with a job id when
asked ``?wait=0``; ``GET /v1/jobs/{id}`` tells how it ended.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from bindrop.api.bodies import only, parse_release_number, query_flag, read_json
from bindrop.api.keys import HUB, JOBS
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
    only(body, {"release"}, "a deploy")
    return await _act(request, Deploy(str(parse_release_number(body.get("release")))))


async def rollback(request: web.Request) -> dict[str, Any]:
    body = await read_json(request, required=False)
    only(body, {"to"}, "a rollback")
    to = body.get("to")
    return await _act(request, Rollback(None if to is None else
                                        str(parse_release_number(to, "to"))))


async def start(request: web.Request) -> dict[str, Any]:
    return await _act(request, Start())


async def stop(request: web.Request) -> dict[str, Any]:
    return await _act(request, Stop())


async def restart(request: web.Request) -> dict[str, Any]:
    return await _act(request, Restart())


async def show_job(request: web.Request) -> dict[str, Any]:
    return request.app[JOBS].get(request.match_info["job"]).to_dict()
