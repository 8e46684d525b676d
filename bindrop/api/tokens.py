"""Tokens: create (the text is in this answer and never again), list, revoke; and the
dashboard's login sessions that stand for a token (``bindrop.store.sessions``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bindrop.api.bodies import only, read_json
from bindrop.api.keys import CALLER, HUB, STORE
from bindrop.errors import Forbidden, InvalidInput
from bindrop.store.tokens import parse_duration, validate_scope


async def create_token(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    only(body, {"name", "scope", "expires"}, "a new token")
    expires = body.get("expires")
    if expires is not None and not isinstance(expires, str):
        raise InvalidInput('expires must be text such as "90d", or null for never')
    scope = validate_scope(body.get("scope", "admin"))
    name = body.get("name")
    if not isinstance(name, str):
        raise InvalidInput('a new token needs a "name", such as "ci" or "laptop"')
    text, token = request.app[HUB].config.create_token(
        name, scope, parse_duration(expires) if expires else None)
    return token.to_dict() | {"token": text}


async def list_tokens(request: web.Request) -> dict[str, Any]:
    return {"tokens": [t.to_dict() for t in request.app[HUB].config.list_tokens()]}


async def revoke_token(request: web.Request) -> dict[str, Any]:
    return request.app[HUB].config.revoke_token(request.match_info["name"]).to_dict()


async def create_session(request: web.Request) -> dict[str, Any]:
    """Trade the caller's token for a dashboard session secret that expires (a session
    cannot make another: it would never end)."""
    caller = request[CALLER]
    if caller.token is None:
        raise InvalidInput("sessions stand for a token; call with `Authorization: Bearer` "
                           "and a token")
    if caller.session is not None:
        raise Forbidden("a session cannot start another session; log in with a token")
    secret, expires = request.app[STORE].create_session(caller.token)
    return {"session": secret, "expires_at": expires.isoformat(), "name": caller.name,
            "scope": caller.scope, "admin": caller.admin}


async def end_session(request: web.Request) -> dict[str, Any]:
    """End the session this request came with (logging out of the dashboard)."""
    caller = request[CALLER]
    if caller.session is None:
        raise InvalidInput("this request came with no session to end")
    request.app[STORE].end_session(caller.session)
    return {"ended": True}
