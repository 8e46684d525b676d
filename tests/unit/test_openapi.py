"""The OpenAPI document is built from the one route table and says what each route takes."""

from __future__ import annotations

import json
import re

import pytest

from bindrop.api.openapi import build_openapi
from bindrop.api.routes import ROUTES

DOC = build_openapi(ROUTES)
OPS = [(path, method, op) for path, ops in DOC["paths"].items() for method, op in ops.items()]


def test_every_route_is_in_the_document_once() -> None:
    assert sorted((r.path, r.method.lower()) for r in ROUTES) == sorted(
        (path, method) for path, method, _ in OPS)
    assert len({r.handler for r in ROUTES}) == len(ROUTES)


def test_the_document_is_openapi_3_1_json() -> None:
    assert DOC["openapi"].startswith("3.1")
    assert json.loads(json.dumps(DOC)) == DOC
    assert DOC["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_issue_s_routes_are_all_there() -> None:
    paths = set(DOC["paths"])
    for path in ("/v1/apps", "/v1/apps/{app}", "/v1/apps/{app}/releases",
                 "/v1/apps/{app}/deploy", "/v1/apps/{app}/rollback", "/v1/apps/{app}/env",
                 "/v1/apps/{app}/limits", "/v1/apps/{app}/status", "/v1/apps/{app}/logs",
                 "/v1/events", "/v1/tokens", "/v1/server", "/v1/openapi.json",
                 "/v1/jobs/{job}"):
        assert path in paths


@pytest.mark.parametrize(("path", "method", "op"), OPS, ids=[f"{m} {p}" for p, m, _ in OPS])
def test_each_operation_declares_its_path_parameters_and_error_shape(
    path: str, method: str, op: dict[str, object]
) -> None:
    declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}  # type: ignore[attr-defined,index]
    assert declared == set(re.findall(r"\{(\w+)\}", path))
    responses = op["responses"]
    assert isinstance(responses, dict)
    assert responses["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}
    assert op["summary"]


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
def test_every_route_that_changes_something_is_admin_only(route: object) -> None:
    from bindrop.api.endpoint import Endpoint

    assert isinstance(route, Endpoint)
    # A read-only token still logs in to the dashboard: its own session is all these touch.
    own_login = {("POST", "/v1/sessions"), ("DELETE", "/v1/sessions/current")}
    if route.method != "GET" and (route.method, route.path) not in own_login:
        assert route.admin
