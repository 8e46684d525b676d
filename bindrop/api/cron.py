"""An app's scheduled jobs: list, add (creates the timer), remove."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bindrop.api.bodies import only, read_json
from bindrop.api.keys import HUB
from bindrop.errors import InvalidInput


async def list_jobs(request: web.Request) -> dict[str, Any]:
    app = request.match_info["app"]
    return {"jobs": [j.to_dict() for j in request.app[HUB].cron.jobs(app)]}


async def add_job(request: web.Request) -> dict[str, Any]:
    app = request.match_info["app"]
    body = await read_json(request)
    only(body, {"name", "schedule", "args"}, "a job")
    schedule, args, name = body.get("schedule"), body.get("args"), body.get("name")
    if not isinstance(schedule, str):
        raise InvalidInput('a job needs a "schedule" such as "daily" or "*-*-* 03:00"')
    if not isinstance(args, list) or not args:
        raise InvalidInput('a job needs "args": what to run the release with, as a list')
    hub = request.app[HUB]
    if name is None:
        taken = {j.name for j in hub.cron.jobs(app)}
        name = next(f"job{n}" for n in range(1, len(taken) + 2) if f"job{n}" not in taken)
    if not isinstance(name, str):
        raise InvalidInput("name must be text such as nightly")
    return (await hub.cron.add(app, name, schedule, args)).to_dict()


async def remove_job(request: web.Request) -> dict[str, Any]:
    hub = request.app[HUB]
    job = await hub.cron.remove(request.match_info["app"], request.match_info["name"])
    return job.to_dict()
