"""The Backups and Disk pages, and the forms they post: run a backup, verify one, restore an
app. Everything goes through the control API (the hub runs the work as units on the server).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from bindrop.client.client import Client
from bindrop.dashboard.context import api, render
from bindrop.dashboard.pages import _done

TREND_W, TREND_H = 240, 40


def _started(run: Any) -> str:
    if not isinstance(run, dict):
        return "started"
    what = f"{run.get('kind')} of {run['app']}" if run.get("app") else str(run.get("kind"))
    return f"{what} started (run {run.get('id')}); the list updates when it ends"


async def backups(request: web.Request) -> web.StreamResponse:
    async with api(request) as client:
        listed, runs = await asyncio.gather(client.backups(), client.care_runs())
    return render(request, "backups.html", backups=list(reversed(listed)),
                  current=runs["current"], runs=runs["runs"][:10])


async def run_backup(request: web.Request) -> web.StreamResponse:
    app = str((await request.post()).get("app", "")) or None
    return await _done(request, "/backups", lambda c: c.start_backup(app), _started)


async def verify(request: web.Request) -> web.StreamResponse:
    backup_id = request.match_info["backup"]

    async def call(client: Client) -> Any:
        return await client.verify_backup(backup_id, wait=True)

    def said(run: Any) -> str:
        if run.get("state") == "succeeded":
            return f"backup {backup_id} is intact"
        return str((run.get("error") or {}).get("message", "the check failed"))

    return await _done(request, "/backups", call, said)


async def restore(request: web.Request) -> web.StreamResponse:
    app = request.match_info["app"]
    backup_id = str((await request.post()).get("from", "")) or None
    return await _done(request, "/backups", lambda c: c.restore(app, backup_id), _started)


async def disk(request: web.Request) -> web.StreamResponse:
    async with api(request) as client:
        report = await client.disk()
    return render(request, "disk.html", report=report, trends=trends(report))


def trends(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per filesystem: its usage over the last checks, as SVG polyline points. Pure."""
    samples = report.get("samples") or []
    shown = []
    for fs in report.get("filesystems", []):
        values = [f.get("percent") or 0.0 for s in samples for f in s["filesystems"]
                  if f.get("mount") == fs["mount"]]
        step = TREND_W / max(len(values) - 1, 1)
        points = " ".join(f"{i * step:.1f},{TREND_H - TREND_H * v / 100:.1f}"
                          for i, v in enumerate(values))
        shown.append({"mount": fs["mount"], "points": points, "checks": len(values),
                      "first": samples[0]["at"] if samples else None,
                      "last": values[-1] if values else None})
    return shown
