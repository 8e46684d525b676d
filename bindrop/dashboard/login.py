"""``/login`` and ``/logout``: a bindrop token in, a session cookie out.

The login form is protected from cross-site posts by a double-submit value: the form carries
the same random value as a SameSite=Strict cookie set with it. The token is checked by asking
the API who it is (``/v1/whoami``); it is never logged or echoed back.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from bindrop.client.client import Client, RemoteError
from bindrop.dashboard.context import (
    API_URL,
    COOKIE,
    LIMITER,
    LOGIN_COOKIE,
    SESSION,
    SESSIONS,
    find_session,
    render,
)
from bindrop.dashboard.limiter import client_address
from bindrop.dashboard.sessions import MAX_AGE_S, new_secret, same_secret

log = logging.getLogger(__name__)

TOKEN_MAX = 512
#: A wrong token costs this long, so guessing is slow from one connection.
FAILED_LOGIN_DELAY_S = 0.5


def _cookie(response: web.StreamResponse, name: str, value: str, *, max_age: int,
            path: str) -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, secure=True, httponly=True,
                        samesite="Strict")


def is_secure_context(scheme: str, host: str) -> bool:
    """Whether a browser keeps a ``Secure`` cookie for this page: HTTPS, or plain HTTP to
    localhost (and ``*.localhost``, 127.0.0.1), which browsers treat as secure. Pure."""
    if scheme == "https":
        return True
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.lower().rstrip(".")
    return name in ("localhost", "127.0.0.1", "[::1]") or name.endswith(".localhost")


def _login_page(request: web.Request, *, error: str | None = None,
                status: int = 200) -> web.Response:
    csrf = new_secret()
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    insecure = not is_secure_context(scheme, request.headers.get("Host", ""))
    response = render(request, "login.html", status=status, csrf=csrf, error=error,
                      insecure=insecure)
    _cookie(response, LOGIN_COOKIE, csrf, max_age=3600, path="/login")
    return response


async def show_login(request: web.Request) -> web.StreamResponse:
    if await find_session(request) is not None:
        raise web.HTTPSeeOther("/")
    return _login_page(request)


def parse_token(value: object) -> str | None:
    """The token from the form, or None if it cannot be one (empty, too long, blanks)."""
    if not isinstance(value, str):
        return None
    token = value.strip()
    if not token or len(token) > TOKEN_MAX or not token.isprintable() or " " in token:
        return None
    return token


async def log_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    if not same_secret(form.get("csrf"), request.cookies.get(LOGIN_COOKIE, "")):
        return _login_page(request, status=403,
                           error="the login form expired or did not come from this page; "
                                 "try again")
    address = client_address(request.remote, request.headers)
    wait = request.app[LIMITER].wait_for(address)
    if wait:
        log.info("refused a login from %s: too many failed logins", address)
        return _login_page(request, status=429,
                           error=f"too many failed logins from your address; try again in "
                                 f"{max(1, round(wait / 60))} min")
    token = parse_token(form.get("token"))
    if token is None:
        return _login_page(request, status=400,
                           error="paste a bindrop token (`bindrop token create NAME` on the "
                                 "server prints one)")
    try:
        async with Client(request.app[API_URL], token) as client:
            who = await client.whoami()
            # The cookie holds a session of the API, never the token (which may live long).
            secret = str((await client.create_session())["session"])
    except RemoteError as exc:
        if exc.status in (401, 403):
            log.info("refused a login from %s: the token is not valid", address)
            request.app[LIMITER].failed(address)
            await asyncio.sleep(FAILED_LOGIN_DELAY_S)
            return _login_page(request, status=401,
                               error="that token is not valid (revoked, expired or mistyped)")
        return _login_page(request, status=502, error=exc.message)
    session = request.app[SESSIONS].create(secret, str(who["name"]), bool(who["admin"]),
                                           session_id=secret)
    log.info("%s logged in (%s)", session.name, "admin" if session.admin else "read-only")
    response = web.HTTPSeeOther("/")
    _cookie(response, COOKIE, session.id, max_age=int(MAX_AGE_S), path="/")
    response.del_cookie(LOGIN_COOKIE, path="/login")
    raise response


async def log_out(request: web.Request) -> web.StreamResponse:
    session = request[SESSION]
    try:
        async with Client(request.app[API_URL], session.token) as client:
            await client.end_session()
    except RemoteError as exc:  # expired or revoked already: gone either way
        log.info("ending a session: %s", exc.message)
    request.app[SESSIONS].drop(session.id)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response
