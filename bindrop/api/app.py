"""``make_api_app``: the control API as one aiohttp application, assembled here only.

The same routes serve the unix socket (root only, checked by peer credentials; no token)
and TCP (``require_token``: every request needs a bearer token). One middleware renders
every error as ``{"error": {"code", "message"}}`` with its status, aiohttp's own 404, 405 and
413 included; handlers return plain dicts.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler as AiohttpHandler
from aiohttp.typedefs import Middleware

from bindrop.api.auth import Caller, local_caller, parse_bearer, peer_uid, require_admin
from bindrop.api.bodies import JSON_BODY_MAX
from bindrop.api.bucket import BUCKET, BucketControl
from bindrop.api.endpoint import Endpoint
from bindrop.api.jobs import Jobs
from bindrop.api.keys import CALLER, CLOSING, HUB, JOBS, SETTINGS, STORE, STREAMING
from bindrop.api.openapi import OPENAPI, build_openapi
from bindrop.api.routes import LOCAL_ROUTES, ROUTES
from bindrop.errors import BindropError
from bindrop.hub.hub import Hub
from bindrop.settings import Settings
from bindrop.store.sessions import is_session

log = logging.getLogger(__name__)

_HTTP_CODES = {400: "invalid_input", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "too_large"}
_HTTP_MESSAGES = {
    404: "no such endpoint; see /v1/openapi.json for the API's routes",
    405: "this endpoint does not take that method; see /v1/openapi.json",
    413: "the request body is too large",
}


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def render_errors(request: web.Request, handler: AiohttpHandler) -> web.StreamResponse:
    """The one place errors become responses."""
    try:
        return await handler(request)
    except BindropError as exc:
        if request.get(STREAMING):
            log.warning("%s %s ended: %s", request.method, request.path, exc.message)
            raise ConnectionResetError(exc.message) from None
        return error_response(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = _HTTP_MESSAGES.get(exc.status, exc.reason)
        return error_response(exc.status, _HTTP_CODES.get(exc.status, f"http_{exc.status}"),
                              message)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        if request.get(STREAMING):  # the answer has begun: only closing is left
            raise
        return error_response(500, "internal_error",
                              "the hub failed to handle this request; see its log")


def authenticate(require_token: bool) -> Middleware:
    """Who is calling: a bearer token (TCP), or the peer's uid (the unix socket)."""

    @web.middleware
    async def middleware(request: web.Request, handler: AiohttpHandler) -> web.StreamResponse:
        if require_token:
            try:
                secret = parse_bearer(request.headers.get("Authorization"))
                token = request.app[HUB].config.authenticate(secret)
            except BindropError:
                log.info("refused %s %s from %s: no valid token", request.method, request.path,
                         request.remote)
                raise
            request[CALLER] = Caller(f"token {token.name}", token.scope, token=token.name,
                                     session=secret if is_session(secret) else None)
        else:
            sock = request.transport.get_extra_info("socket") if request.transport else None
            request[CALLER] = local_caller(peer_uid(sock))
        return await handler(request)

    return middleware


def _endpoint(route: Endpoint) -> AiohttpHandler:
    async def handle(request: web.Request) -> web.StreamResponse:
        if route.admin:
            require_admin(request[CALLER], "change anything" if route.method != "GET"
                          else "read this")
        result = await route.handler(request)
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result, status=route.status, dumps=_dumps)

    handle.__name__ = route.handler.__name__
    return handle


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def make_api_app(hub: Hub, settings: Settings, *, require_token: bool,
                 jobs: Jobs | None = None, bucket: BucketControl | None = None
                 ) -> web.Application:
    """The control API over ``hub``; ``require_token`` for TCP, not for the unix socket.
    Apps serving one hub on several listeners share ``jobs``, so a job id works on each."""
    app = web.Application(middlewares=[render_errors, authenticate(require_token)],
                          client_max_size=JSON_BODY_MAX)
    app[HUB] = hub
    app[STORE] = hub.store
    app[SETTINGS] = settings
    app[JOBS] = jobs if jobs is not None else Jobs()
    app[CLOSING] = asyncio.Event()
    if bucket is not None:
        app[BUCKET] = bucket
    app[OPENAPI] = build_openapi(ROUTES)
    for route in (*ROUTES, *(LOCAL_ROUTES if not require_token else ())):
        app.router.add_route(route.method, route.path, _endpoint(route),
                             expect_handler=route.expect)

    async def closing(app: web.Application) -> None:
        app[CLOSING].set()

    app.on_shutdown.append(closing)
    return app


