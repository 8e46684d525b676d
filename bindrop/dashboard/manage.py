"""The dashboard's write controls beyond start/stop: create an app, change its hosts and
settings, upload a release (and deploy it), deploy one, and an app's scheduled jobs.

Every form goes to the control API with the logged-in person's token (a read-only token is
refused there too; the pages show it no such form). Form values are read here into what the
API takes; the API checks them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from bindrop.client.client import RemoteError
from bindrop.dashboard.context import SESSION, api, wants_json
from bindrop.dashboard.pages import _done, _outcome
from bindrop.dashboard.sessions import same_secret

LIMITS = ("memory_max", "cpu_quota", "tasks_max")
_CHUNK = 256 * 1024


def parse_hosts(text: str) -> list[str]:
    """Hosts typed in one field, separated by spaces, commas or new lines. Pure."""
    return [h for h in re.split(r"[\s,]+", text) if h]


def parse_app_form(form: Any, *, new: bool) -> dict[str, Any]:
    """A create or settings form as the API's JSON. Empty limit fields mean no limit; an
    empty health path means a TCP check. Pure."""
    body: dict[str, Any] = {"hosts": parse_hosts(str(form.get("hosts", "")))}
    if new:
        body["name"] = str(form.get("name", "")).strip()
    body["health_path"] = str(form.get("health_path", "")).strip() or None
    body["on_demand"] = form.get("on_demand") == "on"
    for key in LIMITS:
        if key in form:
            body[key] = str(form.get(key, "")).strip() or None
    if not new:
        body["maintenance_message"] = str(form.get("maintenance_message", "")).strip() or None
    return body


async def create_app(request: web.Request) -> web.StreamResponse:
    body = parse_app_form(await request.post(), new=True)
    try:
        async with api(request) as client:
            created = await client.create_app(body)
    except RemoteError as exc:
        if exc.status == 401:
            raise
        request[SESSION].say("error", exc.message)
        raise web.HTTPSeeOther("/") from None
    request[SESSION].say("ok", f"app {created['name']} created: upload a release to run it")
    raise web.HTTPSeeOther(f"/apps/{created['name']}")


async def update_app(request: web.Request) -> web.StreamResponse:
    name = request.match_info["app"]
    body = parse_app_form(await request.post(), new=False)
    return await _done(request, f"/apps/{name}", lambda c: c.update_app(name, body),
                       lambda _r: "settings saved")


async def deploy(request: web.Request) -> web.StreamResponse:
    name = request.match_info["app"]
    release = str((await request.post()).get("release", ""))
    if not release.isdigit() or not 0 < int(release) < 2**31:
        request[SESSION].say("error", "choose a release to deploy")
        raise web.HTTPSeeOther(f"/apps/{name}")
    return await _done(request, f"/apps/{name}", lambda c: c.deploy(name, int(release)),
                       _outcome)


async def add_cron_job(request: web.Request) -> web.StreamResponse:
    name = request.match_info["app"]
    form = await request.post()
    schedule = str(form.get("schedule", "")).strip()
    job = str(form.get("name", "")).strip() or None
    try:
        args = shlex.split(str(form.get("args", "")))
    except ValueError as exc:
        request[SESSION].say("error", f"the command does not parse: {exc}")
        raise web.HTTPSeeOther(f"/apps/{name}#cron") from None
    return await _done(request, f"/apps/{name}#cron",
                       lambda c: c.add_cron_job(name, schedule, args, name=job),
                       lambda j: f"job {j['name']} added")


async def remove_cron_job(request: web.Request) -> web.StreamResponse:
    name, job = request.match_info["app"], request.match_info["job"]
    return await _done(request, f"/apps/{name}#cron", lambda c: c.remove_cron_job(name, job),
                       lambda _r: f"job {job} removed")


async def upload_release(request: web.Request) -> web.StreamResponse:
    """A multipart form: ``csrf`` first (checked before any byte of the file is read), then
    ``command``, ``kind``, ``deploy`` and the ``file`` itself, streamed to a scratch file
    and on to the API. Not behind the usual form check: the file may be far larger than a
    form."""
    name = request.match_info["app"]
    session = request[SESSION]
    reader = await request.multipart()
    fields: dict[str, str] = {}
    scratch: Path | None = None
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise web.HTTPBadRequest(text="nested multipart is not expected")
            if part.name == "file":
                if not same_secret(fields.get("csrf"), session.csrf):
                    raise web.HTTPForbidden(text="the form is stale (CSRF check failed); "
                                                 "reload the page and retry")
                scratch = await _spool(part)
            elif part.name in ("csrf", "command", "kind", "deploy"):
                fields[part.name] = (await part.read(decode=True)).decode("utf-8", "replace")
        if not same_secret(fields.get("csrf"), session.csrf):
            raise web.HTTPForbidden(text="the form is stale (CSRF check failed); reload the "
                                         "page and retry")
        if scratch is None or not scratch.stat().st_size:
            return _answer(request, name, False, "choose a file to upload")
        try:
            command = shlex.split(fields.get("command", ""))
        except ValueError as exc:
            return _answer(request, name, False, f"the command does not parse: {exc}")
        try:
            async with api(request) as client:
                release = await client.upload_release(name, scratch, command=command,
                                                      bundle=fields.get("kind") == "bundle")
                message = f"release {release['number']} of {name} uploaded"
                if fields.get("deploy") == "on":
                    outcome = await client.deploy(name, int(release["number"]))
                    message = _outcome(outcome)
        except RemoteError as exc:
            if exc.status == 401:
                raise  # ends the session (``page``)
            return _answer(request, name, False, exc.message, status=exc.status)
        return _answer(request, name, True, message)
    finally:
        if scratch is not None:
            with contextlib.suppress(FileNotFoundError):
                scratch.unlink()


async def _spool(part: BodyPartReader) -> Path:
    handle, path = tempfile.mkstemp(prefix="bindrop-upload-")
    with os.fdopen(handle, "wb") as out:
        while chunk := await part.read_chunk(_CHUNK):
            out.write(chunk)
    return Path(path)


def _answer(request: web.Request, app: str, ok: bool, message: str, *,
            status: int = 200) -> web.StreamResponse:
    if wants_json(request):
        return web.json_response({"ok": ok, "message": message},
                                 status=status if not ok and status >= 400 else
                                 (200 if ok else 400))
    request[SESSION].say("ok" if ok else "error", message)
    raise web.HTTPSeeOther(f"/apps/{app}")
