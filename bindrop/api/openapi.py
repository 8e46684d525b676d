"""The OpenAPI 3.1 document of the control API, built from the route table. Pure."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from bindrop import __version__
from bindrop.api.endpoint import Endpoint
from bindrop.api.schemas import ANSWERS, SCHEMAS

OPENAPI = web.AppKey("openapi", dict)

ERROR = {"type": "object", "required": ["error"],
         "properties": {"error": {"type": "object", "required": ["code", "message"],
                                  "properties": {"code": {"type": "string"},
                                                 "message": {"type": "string"}}}}}
_ERRORS = {"400": "Invalid input", "401": "No valid token", "403": "Not allowed",
           "404": "No such thing", "409": "Conflict", "413": "Too large"}
_PARAM = re.compile(r"\{(\w+)\}")


def build_openapi(routes: Sequence[Endpoint]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op: dict[str, Any] = {
            "summary": route.summary,
            "operationId": f"{route.method.lower()}_{route.handler.__module__.rsplit('.', 1)[-1]}"
                           f"_{route.handler.__name__}",
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in _PARAM.findall(route.path)
            ] + [{"name": name, "in": "query", "required": False, "schema": schema,
                  "description": text} for name, schema, text in route.query],
            "responses": {
                str(route.status): {"description": "OK", "content": {
                    route.produces: {"schema": _answer(route)}}},
                **{code: {"description": text,
                          "content": {"application/json": {"schema": {
                              "$ref": "#/components/schemas/Error"}}}}
                   for code, text in _ERRORS.items()},
            },
            "x-admin": route.admin,
        }
        if route.body == "binary":
            op["requestBody"] = {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}}
        elif isinstance(route.body, dict):
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": route.body}}}
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "bindrop control API", "version": __version__,
                 "description": "Everything that changes what runs on a bindrop server. "
                                "On TCP every request needs `Authorization: Bearer <token>`."},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR, **SCHEMAS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _answer(route: Endpoint) -> dict[str, Any]:
    if route.produces != "application/json":
        return {"type": "string"}
    return ANSWERS[route.returns] if route.returns else {"type": "object"}


async def openapi_doc(request: web.Request) -> dict[str, Any]:
    return request.app[OPENAPI]
