"""``/v1/events``: server-sent events of live state changes and of recorded events.

Two kinds, each a JSON ``data`` line:

- ``event: state`` — an app's live view changed (``{"app", "live"}``); sent for every app
  when the stream starts, then on each change. Not resumable: a reconnecting client gets the
  current state again.
- ``event: event`` — something recorded (deploys, stops, failures), with ``id:`` its event
  id. Resumable: a client sending ``Last-Event-ID`` (or ``?after=ID``) gets what it missed.

The stream subscribes before it reads what exists, so nothing falls between the two. A
reader that cannot keep up is dropped (its queue is bounded); it resumes by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from bindrop.api.bodies import query_int
from bindrop.api.keys import CLOSING, HUB, STORE, STREAMING
from bindrop.api.views import event_dict, view_dict
from bindrop.domain.names import validate_app_name
from bindrop.errors import InvalidInput
from bindrop.hub.state import AppStateChanged, Change
from bindrop.store import Event

QUEUE_MAX = 1000
PING_S = 15.0
PAGE = 500

Item = tuple[str, dict[str, Any], int | None]


def sse(kind: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    """One server-sent event. Pure."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _after(request: web.Request) -> int | None:
    text = request.headers.get("Last-Event-ID") or request.query.get("after")
    if text is None:
        return None
    if not text.isdigit() or int(text) >= 2**63:
        raise InvalidInput(f"Last-Event-ID {text!r} is not valid: send the id of the last "
                           "event you received")
    return int(text)


async def events(request: web.Request) -> web.StreamResponse:
    hub, store = request.app[HUB], request.app[STORE]
    app = request.query.get("app")
    if app is not None:
        validate_app_name(app)
    after = _after(request)
    # 0 means "no history": only what happens from now on.
    history = query_int(request.query, "history", 0, 0, 1000) if after is None else 0
    queue: asyncio.Queue[Item | None] = asyncio.Queue(QUEUE_MAX)

    def put(item: Item) -> None:
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            queue.put_nowait(None)  # too slow: end the stream, the client resumes by id

    def on_change(change: Change) -> None:
        if isinstance(change, AppStateChanged):
            view = change.new or change.old
            if view is not None and (app is None or view.app == app):
                put(("state", {"app": view.app, "live": view_dict(change.new)}, None))

    def on_event(event: Event) -> None:
        if app is None or event.app == app:
            put(("event", event_dict(event), event.id))

    # Subscribe first, then read what exists: nothing falls in between.
    unsubscribe = [hub.state.subscribe(on_change), store.subscribe_events(on_event)]
    try:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        request[STREAMING] = True
        await response.write(b"retry: 2000\n\n")
        views = hub.state.snapshot().apps
        for name in sorted(views):
            if app is None or name == app:
                await response.write(sse("state", {"app": name, "live": view_dict(views[name])}))
        sent = 0
        if after is not None:
            while True:
                page = store.list_events(app, after_id=max(after, sent), limit=PAGE)
                for event in page:
                    await response.write(sse("event", event_dict(event), event.id))
                    sent = event.id
                if len(page) < PAGE:
                    break
        elif history:
            for event in store.list_events(app, limit=history):
                await response.write(sse("event", event_dict(event), event.id))
                sent = event.id
        await _pump(request, response, queue, sent)
        return response
    finally:
        for undo in unsubscribe:
            undo()


async def _pump(request: web.Request, response: web.StreamResponse,
                queue: asyncio.Queue[Item | None], sent: int) -> None:
    closing = asyncio.ensure_future(request.app[CLOSING].wait())
    try:
        while True:
            getting = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getting, closing}, timeout=PING_S,
                                         return_when=asyncio.FIRST_COMPLETED)
            if getting not in done:
                getting.cancel()
                if closing in done:
                    return  # the server is shutting down
                await response.write(b": ping\n\n")
                continue
            item = getting.result()
            if item is None:
                return
            kind, data, event_id = item
            if event_id is not None and event_id <= sent:
                continue  # already sent from the history read
            await response.write(sse(kind, data, event_id))
    finally:
        closing.cancel()
