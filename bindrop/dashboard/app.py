"""``make_dashboard_app``: the dashboard as one aiohttp application, assembled here only.

Every page needs a session (else a redirect to /login); every POST needs the session's CSRF
token in its form. Pages are rendered with jinja2 (autoescaped); the browser's JavaScript only
enhances them (live state, log tail, actions without a reload), served as a static file so the
Content-Security-Policy can forbid inline scripts.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from bindrop import __version__
from bindrop.client.client import RemoteError
from bindrop.dashboard import care_pages, login, manage, pages, streams
from bindrop.dashboard import format as fmt
from bindrop.dashboard.context import (
    API_URL,
    LIMITER,
    SESSIONS,
    TEMPLATES,
    page,
    render,
    wants_json,
)
from bindrop.dashboard.limiter import LoginLimiter
from bindrop.dashboard.sessions import SessionStore
from bindrop.domain.sizes import format_bytes

HERE = Path(__file__).resolve().parent
#: Largest form accepted (env values, token names): far above any real one.
FORM_MAX = 256 * 1024

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def build_templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters.update(bytes=partial(format_bytes, style="iec"), uptime=fmt.format_uptime,
                       time=fmt.format_time, cpu=fmt.format_cpu, limit=fmt.format_limit)
    env.globals["version"] = __version__
    return env


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def render_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An API error on a page becomes that page's error, not a stack trace."""
    try:
        return await handler(request)
    except RemoteError as exc:
        if wants_json(request):
            return web.json_response({"ok": False, "message": exc.message}, status=exc.status)
        status = exc.status if 400 <= exc.status < 600 else 502
        return render(request, "error.html", status=status, message=exc.message)


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def make_dashboard_app(api_url: str, *, sessions: SessionStore | None = None
                       ) -> web.Application:
    """The dashboard, talking to the control API at ``api_url`` (http(s)://host:port)."""
    app = web.Application(middlewares=[security_headers, render_errors],
                          client_max_size=FORM_MAX)
    app[API_URL] = api_url
    app[SESSIONS] = sessions or SessionStore()
    app[LIMITER] = LoginLimiter()
    app[TEMPLATES] = build_templates()
    add = app.router.add_route
    add("GET", "/healthz", healthz)
    add("GET", "/login", login.show_login)
    add("POST", "/login", login.log_in)
    add("POST", "/logout", page(login.log_out))
    add("GET", "/", page(pages.apps))
    add("GET", "/apps/{app}", page(pages.app))
    add("GET", "/apps/{app}/charts", page(pages.charts))
    add("POST", "/apps", page(manage.create_app))
    add("POST", "/apps/{app}/settings", page(manage.update_app))
    add("POST", "/apps/{app}/deploy", page(manage.deploy))
    add("POST", "/apps/{app}/releases", page(manage.upload_release, form=False))
    add("POST", "/apps/{app}/cron", page(manage.add_cron_job))
    add("POST", "/apps/{app}/cron/{job}/remove", page(manage.remove_cron_job))
    add("POST", "/apps/{app}/{action:start|stop|restart}", page(pages.action))
    add("POST", "/apps/{app}/rollback", page(pages.rollback))
    add("POST", "/apps/{app}/env", page(pages.set_env))
    add("POST", "/apps/{app}/env/unset", page(pages.unset_env))
    add("POST", "/apps/{app}/limits", page(pages.set_limits))
    add("POST", "/apps/{app}/scale", page(pages.scale))
    add("GET", "/metrics.json", page(pages.metrics))
    add("GET", "/server", page(pages.server))
    add("GET", "/tokens", page(pages.tokens))
    add("POST", "/tokens", page(pages.create_token))
    add("POST", "/tokens/{name}/revoke", page(pages.revoke_token))
    add("GET", "/backups", page(care_pages.backups))
    add("POST", "/backups/run", page(care_pages.run_backup))
    add("POST", "/backups/{backup}/verify", page(care_pages.verify))
    add("POST", "/apps/{app}/restore", page(care_pages.restore))
    add("GET", "/disk", page(care_pages.disk))
    add("GET", "/live/events", page(streams.events))
    add("GET", "/live/logs/{app}", page(streams.logs))
    app.router.add_static("/static", HERE / "static", append_version=True)
    return app
