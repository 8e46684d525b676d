"""One-off runs: ``POST /v1/apps/{app}/run`` starts a command with the app's current release
and streams its output as JSON lines, then its exit status:

    {"unit": "bindrop-app-blog-3_run.5f2a9c1e01ab.service"}
    {"message": "a line the command wrote"}            (any number)
    {"exit_status": 3}

With ``"detach": true`` it answers ``{"unit": ...}`` at once and the run goes on. A caller
that goes away before the end stops the run. With ``"plan": true`` nothing starts: the answer
is what ``systemd-run --pty`` on the server needs to run it on a terminal (``bindrop run
--tty``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from bindrop.api.bodies import only, read_json
from bindrop.api.keys import CLOSING, HUB, STREAMING
from bindrop.api.logs import _end, parse_entry
from bindrop.errors import InvalidInput
from bindrop.hub.runs import follow_output

#: After the command ended, how long the journal may stay quiet before its output is done
#: (journald receives a line before systemd sees the process exit, but reads it later).
QUIET = 0.5
SETTLE_MAX = 5.0


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode() + b"\n"


async def run(request: web.Request) -> dict[str, Any] | web.StreamResponse:
    hub = request.app[HUB]
    app = request.match_info["app"]
    body = await read_json(request)
    only(body, {"args", "detach", "plan"}, "a run")
    args = body.get("args")
    if not isinstance(args, list):
        raise InvalidInput('args must be a list of strings, e.g. ["sh", "-c", "echo hi"]')
    detach = body.get("detach", False)
    plan = body.get("plan", False)
    if not isinstance(detach, bool) or not isinstance(plan, bool):
        raise InvalidInput("detach and plan must be true or false")
    if plan:  # for `bindrop run --tty` on the server: its systemd-run starts the unit
        return hub.runs.plan(app, args)
    unit = await hub.runs.start(app, args)
    if detach:
        return {"unit": unit}
    proc = await follow_output(hub.journal.prefix, unit)
    try:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        request[STREAMING] = True
        await response.write(_line({"unit": unit}))
        exited = asyncio.ensure_future(hub.runs.wait(unit))
        closing = asyncio.ensure_future(request.app[CLOSING].wait())
        try:
            status = await _stream(proc, response, exited, closing)
        finally:
            exited.cancel()
            closing.cancel()
        await _end(proc)
        # Unloaded before the caller hears the status: when it has, the unit is gone.
        await asyncio.shield(hub.runs.finish(unit))
        if status is not None:
            await response.write(_line({"exit_status": status}))
        await response.write_eof()
        return response
    finally:
        await _end(proc)
        # Stops a run whose caller left (or whose hub is stopping); a no-op after the end.
        await asyncio.shield(hub.runs.finish(unit))


async def _stream(proc: asyncio.subprocess.Process, response: web.StreamResponse,
                  exited: asyncio.Future[int], closing: asyncio.Future[Any]) -> int | None:
    """Copy the journal's lines until the run ended and its output went quiet; its exit
    status (None if the API is closing)."""
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    settle_until: float | None = None
    while True:
        read = asyncio.ensure_future(proc.stdout.readline())
        waits: set[asyncio.Future[Any]] = {read, closing}
        if settle_until is None:
            waits.add(exited)
        timeout = None if settle_until is None else max(0.0, min(
            QUIET, settle_until - loop.time()))
        done, _ = await asyncio.wait(waits, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if closing in done:
            read.cancel()
            return None
        if read in done:
            raw = read.result()
            if not raw:  # journalctl ended
                break
            entry = parse_entry(raw)
            if entry is not None:
                await response.write(_line({"message": entry["message"]}))
            continue
        read.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await read
        if exited in done and settle_until is None:
            settle_until = loop.time() + SETTLE_MAX
            continue
        if settle_until is not None:  # quiet for QUIET seconds after the end, or too long
            break
    return await exited
