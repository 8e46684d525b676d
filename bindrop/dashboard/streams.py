"""Server-sent events for the browser: the hub's live state and events, and an app's log.

Each stream is the API's own stream (``/v1/events``, ``/v1/apps/{app}/logs?follow=1``) read
with the session's token and passed on, so what a browser sees live is exactly what the API
lets that token see. A browser reconnecting with ``Last-Event-ID`` resumes where it was.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bindrop.client.client import RemoteError
from bindrop.dashboard.context import api

LOG_LINES = 100


def sse(kind: str, data: dict[str, Any], event_id: str | int | None = None) -> bytes:
    """One server-sent event. Pure."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = json.dumps(data, separators=(",", ":"))
    return f"{head}event: {kind}\ndata: {body}\n\n".encode()


async def _open(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    return response


def _last_id(request: web.Request) -> str | None:
    value = request.headers.get("Last-Event-ID")
    return value if value and value.isprintable() and len(value) < 512 else None


async def events(request: web.Request) -> web.StreamResponse:
    """Live state (``state``) and recorded events (``event``), of one app with ``?app=``."""
    app = request.query.get("app") or None
    last = _last_id(request)
    after = int(last) if last is not None and last.isdigit() else None
    response = await _open(request)
    try:
        async with api(request) as client:
            async for kind, data, event_id in client.events(app=app, after=after):
                await response.write(sse(kind, data, event_id))
    except RemoteError as exc:
        await response.write(sse("problem", {"message": exc.message}))
    except ConnectionResetError:  # the browser went away
        pass
    return response


async def logs(request: web.Request) -> web.StreamResponse:
    """The app's journal, the last lines then new ones as they come (``line`` events)."""
    app = request.match_info["app"]
    cursor = _last_id(request)
    response = await _open(request)
    try:
        async with api(request) as client:
            async for entry in client.logs(app, lines=0 if cursor else LOG_LINES, follow=True,
                                           cursor=cursor):
                line = {"time": entry.get("time"), "release": entry.get("release"),
                        "message": entry.get("message", "")}
                await response.write(sse("line", line, entry.get("cursor")))
    except RemoteError as exc:
        await response.write(sse("problem", {"message": exc.message}))
    except ConnectionResetError:
        pass
    return response
