"""Server care through the API: backups, restores, verifies, gc and disk, each a run of care
units the hub starts (``bindrop.hub.care``), so the CLI anywhere, the dashboard and the timers
do the same thing, one at a time.

A run answers at once with its state (``?wait=1``: once it ended); ``GET
/v1/care/runs/{id}`` follows it. ``?queue=1`` waits for a run in progress instead of the 409.
Listings and manifests are read here (they only read the backup folder and the bucket).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from bindrop.api.bodies import only, query_flag, read_json
from bindrop.api.keys import HUB
from bindrop.care.config import CareSettings, load_care_settings, parse_threshold
from bindrop.care.disk import samples_path
from bindrop.care.manifest import parse_backup_id
from bindrop.care.restore import fetched, list_backups
from bindrop.domain.names import validate_app_name
from bindrop.errors import InvalidInput
from bindrop.hub.care import CareRun
from bindrop.hub.hub import Hub

SAMPLES_SHOWN = 96  # a day of 15-minute checks


def care_settings(hub: Hub) -> CareSettings:
    return load_care_settings(hub.settings, hub.care_runs.environ)


async def _answer(request: web.Request, run: CareRun) -> dict[str, Any]:
    if query_flag(request.query, "wait", default=False):
        # Shielded: a caller that goes away does not take the run with it.
        await asyncio.shield(request.app[HUB].care_runs.wait(run))
    return run.to_dict()


def _queue(request: web.Request) -> bool:
    return query_flag(request.query, "queue", default=False)


async def start_backup(request: web.Request) -> dict[str, Any]:
    body = await read_json(request, required=False)
    only(body, {"app"}, "a backup")
    app = body.get("app")
    if app is not None and not isinstance(app, str):
        raise InvalidInput("app must be an app's name, or null for the whole server")
    run = await request.app[HUB].care.start_backup(app, queue=_queue(request))
    return await _answer(request, run)


async def list_all(request: web.Request) -> dict[str, Any]:
    app = request.query.get("app")
    if app is not None:
        validate_app_name(app)
    hub = request.app[HUB]

    def read() -> list[dict[str, Any]]:
        return [b.to_dict() for b in list_backups(care_settings(hub), app)]

    return {"backups": await asyncio.to_thread(read)}


async def show_backup(request: web.Request) -> dict[str, Any]:
    backup_id = request.match_info["backup"]
    parse_backup_id(backup_id)
    hub = request.app[HUB]

    def read() -> dict[str, Any]:
        care = care_settings(hub)
        listed = {b.manifest.id: b for b in list_backups(care)}
        if backup_id in listed:
            item = listed[backup_id]
            manifest = item.manifest
            where = list(item.where)
        else:
            with fetched(care, backup_id) as (manifest, _folder):
                where = []
        return {**manifest.summary(), "where": where,
                "parts": [p.to_dict() for p in manifest.parts]}

    return await asyncio.to_thread(read)


async def verify_backup(request: web.Request) -> dict[str, Any]:
    backup_id = request.match_info["backup"]
    parse_backup_id(backup_id)
    run = await request.app[HUB].care.start_verify(backup_id, queue=_queue(request))
    return await _answer(request, run)


def _from_backup(body: dict[str, Any]) -> str | None:
    """A restore's ``from``: a well-formed backup id, or None for the newest."""
    backup_id = body.get("from")
    if backup_id is None:
        return None
    if not isinstance(backup_id, str):
        raise InvalidInput("from must be a backup id, or null for the newest")
    parse_backup_id(backup_id)
    return backup_id


async def restore_app(request: web.Request) -> dict[str, Any]:
    app = validate_app_name(request.match_info["app"])
    body = await read_json(request, required=False)
    only(body, {"from"}, "a restore")
    backup_id = _from_backup(body)
    run = await request.app[HUB].care.start_restore(app, backup_id, queue=_queue(request))
    return await _answer(request, run)


async def restore_server(request: web.Request) -> dict[str, Any]:
    body = await read_json(request, required=False)
    only(body, {"from"}, "a restore of the server's database")
    backup_id = _from_backup(body)
    if backup_id is not None and parse_backup_id(backup_id)[1] is not None:
        raise InvalidInput(f"backup {backup_id} is of one app and holds no database of "
                           "bindrop; choose a server backup")
    run = await request.app[HUB].care.start_server_restore(backup_id, queue=_queue(request))
    return run.to_dict()


async def gc(request: web.Request) -> dict[str, Any]:
    body = await read_json(request, required=False)
    only(body, {"dry_run"}, "a gc")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise InvalidInput("dry_run must be true or false")
    run = await request.app[HUB].care.start_gc(dry_run=dry_run, queue=_queue(request))
    return await _answer(request, run)


async def disk(request: web.Request) -> dict[str, Any]:
    hub = request.app[HUB]
    report = await hub.care.disk()
    return {**report, "samples": await asyncio.to_thread(_samples, hub)}


async def disk_check(request: web.Request) -> dict[str, Any]:
    body = await read_json(request, required=False)
    only(body, {"threshold"}, "a disk check")
    threshold = body.get("threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (str, int, float)):
            raise InvalidInput("threshold must be a percentage from 1 to 100")
        threshold = f"{parse_threshold(str(threshold)):g}"
    return await request.app[HUB].care.disk_check(threshold)


def _samples(hub: Hub) -> list[dict[str, Any]]:
    """The newest disk checks, oldest first: the trend."""
    path = samples_path(hub.settings)
    try:
        lines = path.read_text().splitlines()[-SAMPLES_SHOWN:]
    except OSError:
        return []
    samples = []
    for line in lines:
        try:
            sample = json.loads(line)
        except ValueError:
            continue
        samples.append({"at": sample.get("at"), "over": sample.get("over", []),
                        "filesystems": [{"mount": f.get("mount"), "percent": f.get("percent")}
                                        for f in sample.get("filesystems", [])]})
    return samples


async def list_runs(request: web.Request) -> dict[str, Any]:
    runs = request.app[HUB].care_runs
    current = runs.current
    return {"current": current.to_dict() if current else None,
            "runs": [r.to_dict() for r in runs.list()]}


async def show_run(request: web.Request) -> dict[str, Any]:
    return request.app[HUB].care_runs.get(request.match_info["run"]).to_dict()


async def report_step(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    only(body, {"progress", "result", "error"}, "a care report")
    request.app[HUB].care_runs.report(request.match_info["step"], body)
    return {"ok": True}
