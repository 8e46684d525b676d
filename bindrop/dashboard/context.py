"""What every page of the dashboard shares: the application's keys, the session (the gate
every page passes, ``page``), a client of the control API with the person's token, rendering.

The pages import this, never the composer (``app``), which imports them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import jinja2
from aiohttp import web

from bindrop.client.client import Client, RemoteError
from bindrop.dashboard.limiter import LoginLimiter, client_address
from bindrop.dashboard.sessions import Session, SessionStore, same_secret

log = logging.getLogger(__name__)

COOKIE = "bindrop_session"
LOGIN_COOKIE = "bindrop_login"

API_URL = web.AppKey("api_url", str)
SESSIONS = web.AppKey("sessions", SessionStore)
LIMITER = web.AppKey("login_limiter", LoginLimiter)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
SESSION = web.RequestKey("session", Session)

PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
