"""``make_dashboard_app``: the dashboard as one aiohttp application, assembled here only.

Every page needs a session (else a redirect to /login); every POST needs the session's CSRF
token in its form. Pages are rendered with jinja2 (autoescaped); the browser's JavaScript only
enhances them (live state, log tail, actions without a reload), served as a static file so the
Content-Security-Policy can forbid inline scripts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from bindrop import __version__
from bindrop.client.client import Client, RemoteError
from bindrop.dashboard import format as fmt
from bindrop.dashboard.limiter import LoginLimiter, client_address
from bindrop.dashboard.sessions import Session, SessionStore, same_secret
from bindrop.domain.sizes import format_bytes

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "bindrop_session"
LOGIN_COOKIE = "bindrop_login"
#: Largest form accepted (env values, token names): far above any real one.
FORM_MAX = 256 * 1024

API_URL = web.AppKey("api_url", str)
SESSIONS = web.AppKey("sessions", SessionStore)
LIMITER = web.AppKey("login_limiter", LoginLimiter)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
SESSION = web.RequestKey("session", Session)

PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

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


def render(request: web.Request, template: str, *, status: int = 200,
           **context: Any) -> web.Response:
    session = request.get(SESSION)
    # A page's script refreshing a part of it in the background never takes the messages
    # meant for the page the person goes to next.
    flash = session.take_flash() if session is not None and not wants_json(request) else []
    page = request.app[TEMPLATES].get_template(template).render(
        session=session, flash=flash, path=request.path,
        **context)
    return web.Response(text=page, status=status, content_type="text/html",
                        headers={"Cache-Control": "no-store"})


@asynccontextmanager
async def api(request: web.Request) -> AsyncIterator[Client]:
    """A client of the control API carrying the logged-in person's token."""
    async with Client(request.app[API_URL], request[SESSION].token) as client:
        yield client


def login_redirect(request: web.Request) -> web.HTTPSeeOther:
    return web.HTTPSeeOther("/login")


#: What a session cookie looks like (the API's session secrets, ``bds_…``).
_SESSION_COOKIE = re.compile(r"bds_[A-Za-z0-9_-]{20,100}")


async def find_session(request: web.Request) -> Session | None:
    """The session of the request's cookie: from this process's cache, or (after a restart
    of the dashboard) from the API, which keeps sessions hashed with their expiry."""
    sessions = request.app[SESSIONS]
    cookie = request.cookies.get(COOKIE)
    session = sessions.get(cookie)
    if session is not None or not cookie or not _SESSION_COOKIE.fullmatch(cookie):
        return session
    # Guessing session secrets counts as failing to log in.
    address = client_address(request.remote, request.headers)
    if request.app[LIMITER].wait_for(address):
        return None
    try:
        async with Client(request.app[API_URL], cookie) as client:
            who = await client.whoami()
    except RemoteError as exc:
        if exc.status in (401, 403):
            request.app[LIMITER].failed(address)
        else:
            log.warning("could not check a session with the API: %s", exc.message)
        return None
    return sessions.create(cookie, str(who["name"]), bool(who["admin"]), session_id=cookie)


def page(handler: PageHandler, *, form: bool = True) -> PageHandler:
    """Needs a session (else to /login); a POST also needs the CSRF token of its session
    (``form=False``: the handler checks it itself, e.g. in a streamed upload).

    An answer of 401 from the API (the token was revoked or expired) ends the session.
    """

    async def wrapped(request: web.Request) -> web.StreamResponse:
        sessions = request.app[SESSIONS]
        session = await find_session(request)
        if session is None:
            if request.headers.get("Accept", "").startswith("text/event-stream"):
                raise web.HTTPUnauthorized(text="log in again")
            raise login_redirect(request)
        request[SESSION] = session
        if request.method == "POST" and form:
            posted = await request.post()
            if not same_secret(posted.get("csrf"), session.csrf):
                raise web.HTTPForbidden(text="the form is stale or not from this dashboard "
                                             "(CSRF check failed); reload the page and retry")
        try:
            return await handler(request)
        except RemoteError as exc:
            if exc.status == 401:
                sessions.drop(session.id)
                response = web.HTTPSeeOther("/login")
                response.del_cookie(COOKIE, path="/")
                raise response from None
            raise

    wrapped.__name__ = handler.__name__
    return wrapped


def wants_json(request: web.Request) -> bool:
    """A request from the page's own script (an action without a reload)."""
    return request.headers.get("X-Requested-With") == "fetch"


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
    from bindrop.dashboard import care_pages, login, manage, pages, streams

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
