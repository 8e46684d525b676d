"""Tokens: create (the text is in this answer and never again), list, revoke."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bindrop.api.bodies import only, read_json
from bindrop.api.keys import HUB
from bindrop.errors import InvalidInput
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
