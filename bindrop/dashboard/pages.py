"""The pages: apps, one app, the server, tokens; and the forms they post.

Each handler asks the control API (with the session's token) and renders a template. A form
that changes something answers with a redirect back and a message (or, from the page's own
script, with JSON), so reloading a page never repeats an action.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bindrop.client.client import Client, RemoteError
from bindrop.dashboard.charts import RANGES, build_charts, render_chart, render_sparkline
from bindrop.dashboard.context import SESSION, api, render, wants_json
from bindrop.dashboard.format import app_url, format_cpu
from bindrop.domain.sizes import format_bytes

LIMIT_FIELDS = ("memory_max", "cpu_quota", "tasks_max")
SYSTEM_KINDS = ("deploy", "restart", "rollback", "start")


def _app_name(request: web.Request) -> str:
    return request.match_info["app"]


def _links(request: web.Request) -> Callable[[str], str]:
    """How to link an app's host: through the same proxy, scheme and port as this page."""
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    tail = request.headers.get("Host", "").rpartition("]")[2].rpartition(":")[2]
    port = int(tail) if tail.isdigit() else None  # none given: the scheme's own
    return lambda h: app_url(h, scheme if scheme in ("http", "https") else "http", port)


async def apps(request: web.Request) -> web.StreamResponse:
    async with api(request) as client:
        listed = await client.apps()
        statuses, overview = await asyncio.gather(
            asyncio.gather(*(client.status(a["name"]) for a in listed),
                           return_exceptions=True),
            client.metrics_overview(since="1h", step="1m"))
    metrics = {a["name"]: (s.get("metrics") or {}) if isinstance(s, dict) else {}
               for a, s in zip(listed, statuses, strict=True)}
    trends = {a["app"]: render_sparkline(a["trend"]) for a in overview["apps"]}
    return render(request, "apps.html", apps=listed, metrics=metrics, link=_links(request),
                  trends=trends)


async def metrics(request: web.Request) -> web.StreamResponse:
    """Memory and CPU of every app (or of ``?app=``), as shown: systemd never pushes these,
    so the pages ask for them every few seconds."""
    only = request.query.get("app")
    async with api(request) as client:
        names = [only] if only else [a["name"] for a in await client.apps()]
        statuses = await asyncio.gather(*(client.status(n) for n in names),
                                        return_exceptions=True)
    shown = {}
    for name, status in zip(names, statuses, strict=True):
        if isinstance(status, RemoteError) and status.status == 401:
            raise status
        m = (status.get("metrics") or {}) if isinstance(status, dict) else {}
        shown[name] = {"memory": format_bytes(m.get("memory_current"), "iec"),
                       "cpu": format_cpu(m.get("cpu_usage_nsec"))}
    return web.json_response(shown, headers={"Cache-Control": "no-store"})


def _range(request: web.Request) -> str:
    wanted = request.query.get("range", "1h")
    return wanted if wanted in RANGES else "1h"


def _charts(series: dict[str, Any]) -> list[dict[str, Any]]:
    times = [p["t"] for p in series["points"]]
    return [{"title": c.title, "now": c.now,
             "svg": render_chart(c, times, series["step"], series["marks"])}
            for c in build_charts(series)]


async def _series(client: Client, name: str, span: str) -> dict[str, Any]:
    since, step = RANGES[span]
    series: dict[str, Any] = await client.metrics(name, since=since, step=step)
    return series


async def app(request: web.Request) -> web.StreamResponse:
    name = _app_name(request)
    span = _range(request)
    async with api(request) as client:
        status, releases, env, events, series, jobs, processes = await asyncio.gather(
            client.status(name), client.releases(name), client.env(name),
            client.history(app=name, limit=30), _series(client, name, span),
            client.cron_jobs(name), client.processes(name))
    checks = [e for e in events if e["kind"].startswith(SYSTEM_KINDS)][-10:]
    return render(request, "app.html", app=status["app"], live=status["live"],
                  metrics=status["metrics"] or {}, releases=releases, env=env["env"],
                  events=list(reversed(events)), checks=list(reversed(checks)),
                  processes=processes, link=_links(request), charts=_charts(series),
                  span=span, ranges=list(RANGES), jobs=jobs)


async def charts(request: web.Request) -> web.StreamResponse:
    """The app page's graphs alone (its script swaps them in every few seconds)."""
    name = _app_name(request)
    span = _range(request)
    async with api(request) as client:
        series = await _series(client, name, span)
    return render(request, "_charts.html", app={"name": name}, charts=_charts(series),
                  span=span, ranges=list(RANGES))


async def _done(request: web.Request, back: str,
                call: Callable[[Client], Awaitable[Any]],
                message: Callable[[Any], str]) -> web.StreamResponse:
    """Run ``call``; answer JSON to the page's script, else a message and a redirect."""
    session = request[SESSION]
    try:
        async with api(request) as client:
            result = await call(client)
    except RemoteError as exc:
        if exc.status == 401:
            raise
        if wants_json(request):
            return web.json_response({"ok": False, "message": exc.message}, status=exc.status)
        session.say("error", exc.message)
        raise web.HTTPSeeOther(back) from None
    text = message(result)
    if wants_json(request):
        return web.json_response({"ok": True, "message": text})
    session.say("ok", text)
    raise web.HTTPSeeOther(back)


def _outcome(result: Any) -> str:
    return str(result.get("message") or "done") if isinstance(result, dict) else "done"


async def action(request: web.Request) -> web.StreamResponse:
    name = _app_name(request)
    verb = request.match_info["action"]
    return await _done(request, f"/apps/{name}", lambda c: c.action(name, verb), _outcome)


async def rollback(request: web.Request) -> web.StreamResponse:
    name = _app_name(request)
    to = str((await request.post()).get("to", ""))
    if not to.isdigit() or not 0 < int(to) < 2**31:
        request[SESSION].say("error", "choose a release to roll back to")
        raise web.HTTPSeeOther(f"/apps/{name}")
    return await _done(request, f"/apps/{name}",
                       lambda c: c.action(name, "rollback", {"to": int(to)}), _outcome)


async def set_env(request: web.Request) -> web.StreamResponse:
    name = _app_name(request)
    form = await request.post()
    key, value = str(form.get("key", "")).strip(), str(form.get("value", ""))
    if not key:
        request[SESSION].say("error", "name the variable to set")
        raise web.HTTPSeeOther(f"/apps/{name}")
    return await _done(request, f"/apps/{name}", lambda c: c.set_env(name, {key: value}),
                       lambda _r: f"{key} set")  # the name only: values may be secrets


async def unset_env(request: web.Request) -> web.StreamResponse:
    name = _app_name(request)
    key = str((await request.post()).get("key", "")).strip()
    return await _done(request, f"/apps/{name}", lambda c: c.unset_env(name, [key]),
                       lambda _r: f"{key} unset")


async def scale(request: web.Request) -> web.StreamResponse:
    name = _app_name(request)
    form = await request.post()
    counts: dict[str, int] = {}
    for key, value in form.items():
        text = str(value).strip()
        if key.startswith("count_") and text:
            if not text.isdigit() or len(text) > 6:
                request[SESSION].say("error", f"{key[6:]}: give a whole number of instances")
                raise web.HTTPSeeOther(f"/apps/{name}")
            counts[key[6:]] = int(text)
    if not counts:
        request[SESSION].say("error", "give the number of instances of a process")
        raise web.HTTPSeeOther(f"/apps/{name}")
    return await _done(request, f"/apps/{name}", lambda c: c.scale(name, counts), _outcome)


async def set_limits(request: web.Request) -> web.StreamResponse:
    name = _app_name(request)
    form = await request.post()
    # An empty field removes the limit; the API parses "256M", "50%", "64".
    limits = {k: (str(form.get(k, "")).strip() or None) for k in LIMIT_FIELDS}
    return await _done(request, f"/apps/{name}", lambda c: c.set_limits(name, limits),
                       lambda _r: "limits saved")


async def server(request: web.Request) -> web.StreamResponse:
    async with api(request) as client:
        info, services, every, events = await asyncio.gather(
            client.server(), client.services(), client.apps(include_system=True),
            client.history(limit=50))
    return render(request, "server.html", info=info, services=services,
                  system_apps=[a for a in every if a.get("system")],
                  events=list(reversed(events)), link=_links(request))


async def tokens(request: web.Request, *, new_token: dict[str, Any] | None = None
                 ) -> web.StreamResponse:
    listed = None
    if request[SESSION].admin:
        async with api(request) as client:
            listed = await client.tokens()
    return render(request, "tokens.html", tokens=listed, new_token=new_token)


async def create_token(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = str(form.get("name", "")).strip()
    read_only = form.get("scope") == "read-only"
    expires = str(form.get("expires", "")).strip() or None
    try:
        async with api(request) as client:
            created = await client.create_token(name, read_only=read_only, expires=expires)
    except RemoteError as exc:
        if exc.status == 401:
            raise
        request[SESSION].say("error", exc.message)
        raise web.HTTPSeeOther("/tokens") from None
    # Shown on this answer only (not after a redirect), which is not cached.
    return await tokens(request, new_token=created)


async def revoke_token(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    return await _done(request, "/tokens", lambda c: c.revoke_token(name),
                       lambda _r: f"token {name} revoked")
