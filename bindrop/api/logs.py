"""``/v1/apps/{app}/logs``: the app's journal (every release), as JSON lines, followed.

Runs ``journalctl -o json BINDROP_APP=<app>`` (through the hub's journal prefix, so a hub on
a host reads a machine's journal) and streams one JSON object per line:
``{"cursor", "time", "unit", "release", "message"}``. A reader resumes with ``?cursor=`` (the
last cursor it saw) and gets only what came after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from typing import Any

from aiohttp import web

from bindrop.api.bodies import LINES_MAX, query_flag, query_int
from bindrop.api.keys import CLOSING, HUB, STORE, STREAMING
from bindrop.domain.processes import validate_process_name
from bindrop.errors import InvalidInput, SystemdError
from bindrop.hub.logs import unit_of_app

CURSOR_MAX = 512
LINE_MAX = 4 * 1024 * 1024  # journald keeps messages up to 48K by default; JSON doubles some


def journal_argv(prefix: list[str], app: str, *, lines: int, follow: bool,
                 cursor: str | None, process: str | None = None) -> list[str]:
    """The journalctl command line (``process``: only that process type's lines). Pure."""
    argv = [*prefix, "journalctl", "--no-pager", "-o", "json", "--output-fields="
            "MESSAGE,_SYSTEMD_UNIT,BINDROP_RELEASE,BINDROP_PROCESS,BINDROP_INSTANCE,"
            "__CURSOR,__REALTIME_TIMESTAMP"]
    argv += [f"--after-cursor={cursor}"] if cursor else ["-n", str(lines)]
    if follow:
        argv.append("--follow")
    argv.append(f"BINDROP_APP={app}")
    if process is not None:
        argv.append(f"BINDROP_PROCESS={process}")
    return argv


def parse_entry(line: bytes) -> dict[str, Any] | None:
    """One journal JSON line as the API shows it; None for what is not an entry. Pure."""
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict) or "__CURSOR" not in raw:
        return None
    message = raw.get("MESSAGE")
    if isinstance(message, list):  # journald sends bytes that are not UTF-8 as a list
        message = bytes(b & 0xFF for b in message if isinstance(b, int)).decode("utf-8",
                                                                                 "replace")
    stamp = raw.get("__REALTIME_TIMESTAMP")
    return {"cursor": raw["__CURSOR"],
            "time": int(stamp) if isinstance(stamp, str) and stamp.isdigit() else None,
            "unit": raw.get("_SYSTEMD_UNIT"), "release": raw.get("BINDROP_RELEASE"),
            "process": raw.get("BINDROP_PROCESS"), "instance": raw.get("BINDROP_INSTANCE"),
            "message": message if isinstance(message, str) else ""}


async def logs(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    store = request.app[STORE]
    app = request.match_info["app"]
    store.get_app(app)
    lines = query_int(request.query, "lines", 100, 0, LINES_MAX)
    follow = query_flag(request.query, "follow")
    cursor = request.query.get("cursor")
    if cursor is not None and (not cursor or len(cursor) > CURSOR_MAX
                               or not cursor.isprintable()):
        raise InvalidInput("cursor is not valid: send the cursor of the last line you received")
    process = request.query.get("process")
    if process is not None and process not in ("release", "run", "cron"):
        validate_process_name(process)
    argv = journal_argv(hub.journal.prefix, app, lines=lines, follow=follow, cursor=cursor,
                        process=process)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, limit=LINE_MAX, start_new_session=True)
    except OSError as exc:
        raise SystemdError(f"cannot run journalctl on the server: {exc}") from None
    try:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        request[STREAMING] = True
        closing = asyncio.ensure_future(request.app[CLOSING].wait())
        try:
            await _copy(proc, response, closing, app)
        finally:
            closing.cancel()
        return response
    finally:
        await _end(proc)


async def _end(proc: asyncio.subprocess.Process) -> None:
    """Kill the reader's whole process group: ``nsenter -p`` forks, so journalctl is a
    grandchild that killing ``proc`` alone would leave following the journal."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.stdout is not None:
        with contextlib.suppress(Exception):
            await proc.stdout.read()  # EOF once every writer is gone; closes the pipe
    await proc.wait()


async def _copy(proc: asyncio.subprocess.Process, response: web.StreamResponse,
                closing: asyncio.Future[Any], app: str) -> None:
    assert proc.stdout is not None
    while True:
        read = asyncio.ensure_future(proc.stdout.readline())
        await asyncio.wait({read, closing}, return_when=asyncio.FIRST_COMPLETED)
        if not read.done():
            read.cancel()
            return
        line = read.result()
        if not line:
            return
        entry = parse_entry(line)
        if entry is not None and unit_of_app(entry["unit"], app):
            await response.write(json.dumps(entry).encode() + b"\n")
