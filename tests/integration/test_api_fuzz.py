"""Walk the API's own OpenAPI document and send every operation bad input: no answer is a
5xx, and every refusal has the error shape. (A small stand-in for schemathesis.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from bindrop.api import ApiServer

pytestmark = pytest.mark.integration

PATH_VALUES = ["fz", "nope", "UPPER", "a" * 200, "..", "-1", "0", "ü", "x y", "%00"]
QUERY_VALUES = ["", "-1", "abc", "9" * 30, "1.5", "\u00e9", "[1", "true!"]
RAW_BODIES = [b"", b"{", b"[]", b"null", b"1", b'"s"', b"{}", b"\xff\xfe", b'{"a": 1}']
WRONG_VALUES: list[Any] = [None, True, -1, 0, 1e308, "", "x" * 5000, [], {}, ["a", 1],
                           {"k": "v"}, "256Q", "\u0000"]
UPLOADS = [b"", b"garbage", b"\x7fELF", b"PK\x03\x04zip", b"#!\r\n"]


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = [(path, method.upper(), op) for path, item in doc["paths"].items()
           for method, op in item.items()]
    # Destroying the real app last lets the other operations reach past the app lookup.
    return sorted(ops, key=lambda o: (o[1] == "DELETE" and o[0] == "/v1/apps/{app}", o[0]))


def requests(path: str, op: dict[str, Any]) -> Iterator[tuple[str, dict[str, str], Any]]:
    """(path, query, body) triples that are each wrong in one way."""
    names = [p["name"] for p in op["parameters"] if p["in"] == "path"]

    def fill(value: str) -> str:
        out = path
        for name in names:
            out = out.replace("{" + name + "}", quote(value, safe=""))
        return out

    base = fill("fz")
    for value in PATH_VALUES if names else []:
        yield fill(value), {}, None
    for param in (p for p in op["parameters"] if p["in"] == "query"):
        for value in QUERY_VALUES:
            yield base, {param["name"]: value}, None
    body = op.get("requestBody", {}).get("content", {})
    if "application/json" in body:
        for raw in RAW_BODIES:
            yield base, {}, raw
        schema = body["application/json"]["schema"]
        for prop in schema.get("properties", {}):
            for wrong in WRONG_VALUES:
                yield base, {}, json.dumps({prop: wrong}).encode()
    if "application/octet-stream" in body:
        for raw in UPLOADS:
            yield base, {}, raw


async def test_no_bad_input_makes_the_api_answer_5xx(api: ApiServer) -> None:
    connector = aiohttp.UnixConnector(str(api.socket_path))
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async with session.get("http://x/v1/openapi.json") as resp:
            doc = await resp.json()
        async with session.post("http://x/v1/apps",
                                json={"name": "fz", "hosts": ["fz.test"]}) as resp:
            assert resp.status == 201
        sent = 0
        failures = []
        for path, method, op in operations(doc):
            for url, query, body in requests(path, op):
                async with session.request(method, "http://x" + url, params=query,
                                           data=body) as resp:
                    sent += 1
                    if resp.status >= 500:
                        failures.append(f"{method} {url} {query} {body!r:.80}: {resp.status}")
                    elif resp.status >= 400:
                        error = (await resp.json())["error"]
                        assert error["code"] and error["message"], (method, url)
                    # A request that happened to be valid may open a stream: leave it.
        assert not failures, "\n".join(failures)
        assert sent > 300
    await asyncio.sleep(0)
