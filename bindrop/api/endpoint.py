"""``Endpoint``: one method and path of the control API, its handler, and what the OpenAPI
document says of it. Shared by the route table (``routes``) and the document built from it
(``openapi``), so neither imports the other's composer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[dict[str, Any] | web.StreamResponse]]
ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]
Param = tuple[str, dict[str, Any], str]


@dataclass(frozen=True)
class Endpoint:
    """``admin``: only an admin caller may use it (everything that changes something; reading
    tokens). ``query``: the query parameters, each ``(name, JSON schema, description)``.
    ``body``: a JSON schema of the request body, ``"binary"`` for a raw upload, or None."""

    method: str
    path: str
    handler: Handler
    summary: str
    admin: bool = False
    query: tuple[Param, ...] = ()
    body: dict[str, Any] | str | None = None
    status: int = 200
    produces: str = "application/json"
    expect: ExpectHandler | None = None
    returns: str | None = None  # a key of bindrop.api.schemas.ANSWERS
