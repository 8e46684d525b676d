"""The proxy counts what it answered per app and release: classes, its own gateway errors
(502/503/504), body bytes both ways and latency; a request for no app is not counted."""

from __future__ import annotations

from typing import Any

import aiohttp

from bindrop.proxy.server import ProxyServer

from .kit import Backend, HubEnd


async def send(proxy: ProxyServer, host: str, path: str = "/", body: bytes | None = None
               ) -> tuple[int, int]:
    port = proxy.ports[0]
    async with aiohttp.ClientSession() as session, session.request(
            "POST" if body else "GET", f"http://127.0.0.1:{port}{path}", data=body,
            headers={"Host": host}, allow_redirects=False) as response:
        return response.status, len(await response.read())


def counted(proxy: ProxyServer) -> dict[tuple[str, str], dict[str, Any]]:
    assert proxy.counters is not None
    return {(e["app"], e["release"]): e for e in proxy.counters.take()}


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
