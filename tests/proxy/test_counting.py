"""The proxy counts what it answered per app and release: classes, its own gateway errors
(502/503/504), body bytes both ways and latency; a request for no app is not counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bindrop.api.proxylink import add_proxy_routes
from bindrop.client.proxywire import TRAFFIC_PATH, render_traffic_entry
from bindrop.proxy.server import ProxyServer

from .kit import Backend, HubEnd, proxy_options, running_proxy


async def send(proxy: ProxyServer, host: str, path: str = "/", body: bytes | None = None
               ) -> tuple[int, int]:
    port = proxy.ports[0]
    async with aiohttp.ClientSession() as session, session.request(
            "POST" if body else "GET", f"http://127.0.0.1:{port}{path}", data=body,
            headers={"Host": host}, allow_redirects=False) as response:
        return response.status, len(await response.read())


def counted(proxy: ProxyServer) -> dict[tuple[str, str], dict[str, Any]]:
    assert proxy.counters is not None
    return {(e.app, e.release): render_traffic_entry(e) for e in proxy.counters.take()}


@pytest.fixture
async def proxy(hub_end: HubEnd, backend: Backend, tmp_path: Path
                ) -> AsyncIterator[ProxyServer]:
    """The proxy fixture's, but with no report to the hub during a test (a report every 5 s
    takes the counters: a slow machine's test would find some gone)."""
    await hub_end.publish("web", backend.port)
    async with running_proxy(proxy_options(hub_end, tmp_path, upstream_timeout=1.0,
                                           activity_interval=3600)) as p:
        yield p


async def test_answers_are_counted_by_class_and_gateway_code_with_bytes_and_latency(
        proxy: ProxyServer, hub_end: HubEnd) -> None:
    counted(proxy)  # whatever the fixtures sent
    sizes = [await send(proxy, "web.test", "/hello"),
             await send(proxy, "web.test", "/upload", b"x" * 5000),
             await send(proxy, "web.test", "/slow")]  # 504 after the 1 s upstream timeout
    await send(proxy, "down.test")  # stopped: 503
    await send(proxy, "nobody.test")  # no app: 404, not counted
    web = counted(proxy)
    assert set(web) == {("web", "1"), ("down", "")}
    one = web[("web", "1")]
    assert one["requests"] == 3
    assert one["classes"] == {"2xx": 2, "5xx": 1}
    assert one["gateway"] == {"504": 1}
    assert one["bytes_in"] == 5000
    assert one["bytes_out"] == sum(size for _, size in sizes)
    assert sum(one["latency"]) == 3 and one["latency_sum"] >= 1.0
    assert web[("down", "")]["gateway"] == {"503": 1}

    gone = await Backend("gone").start()
    port = gone.port
    await gone.stop()
    await hub_end.publish("web", port, release="2")
    assert (await send(proxy, "web.test"))[0] == 502
    assert counted(proxy)[("web", "2")]["gateway"] == {"502": 1}


async def test_a_closing_proxy_sends_what_it_counted_since_its_last_report(
        hub_end: HubEnd, backend: Backend, tmp_path: Path) -> None:
    reports: list[dict[str, Any]] = []

    async def traffic(request: web.Request) -> web.Response:
        reports.append(await request.json())
        return web.Response(status=204)

    assert hub_end.runner is not None
    await hub_end.stop()  # again, with a traffic route that records what arrives
    app = web.Application()
    add_proxy_routes(app, hub_end.link)
    app.router.add_post(TRAFFIC_PATH, traffic)
    hub_end.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await hub_end.runner.setup()
    await web.UnixSite(hub_end.runner, str(hub_end.socket_path)).start()
    await hub_end.publish("web", backend.port)
    # Reports every hour only: the last one is the flush at close.
    async with running_proxy(proxy_options(hub_end, tmp_path, activity_interval=3600)) as p:
        assert (await send(p, "web.test"))[0] == 200
    assert [e["requests"] for r in reports for e in r["traffic"]] == [1]
