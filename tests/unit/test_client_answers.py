"""What the client says when the address answers but is not bindrop's API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bindrop.client.client import Client, RemoteError


@pytest.fixture
async def page_server() -> AsyncIterator[str]:
    """An HTTP server on 127.0.0.1 that answers like the proxy for an unknown host, and like
    the API for an unknown app."""
    async def not_an_app(_request: web.Request) -> web.Response:
        return web.Response(status=404, text="<h1>No app answers here</h1>",
                            content_type="text/html")

    async def api_404(_request: web.Request) -> web.Response:
        return web.json_response({"error": {"code": "not_found",
                                            "message": "no app named 'x'"}}, status=404)

    app = web.Application()
    app.router.add_get("/v1/apps/x", api_404)
    app.router.add_route("*", "/{tail:.*}", not_an_app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_404_that_is_not_the_apis_says_where_the_api_answers(page_server: str) -> None:
    async with Client(page_server, token="bd_x") as client:
        with pytest.raises(RemoteError) as refused:
            await client.apps()
    assert refused.value.message.startswith("the server answered 404 Not Found; ")
    assert "control host" in refused.value.message


async def test_the_apis_own_404_is_passed_on_as_it_is(page_server: str) -> None:
    async with Client(page_server, token="bd_x") as client:
        with pytest.raises(RemoteError) as refused:
            await client.app("x")
    assert refused.value.message == "no app named 'x'"
