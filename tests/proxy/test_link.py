"""The hub <-> proxy link over a real unix socket: confirmations, drains, outages."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from bindrop.hub.state import Route
from bindrop.proxy.server import ProxyServer

from .kit import HANG, Backend, HubEnd, proxy_options, running_proxy


async def get(proxy: ProxyServer, host: str, path: str = "/") -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{proxy.ports[0]}{path}", headers={"Host": host}) as response:
        return response.status, await response.text()


async def test_publish_returns_once_the_proxy_serves_the_new_table(
        proxy: ProxyServer, hub_end: HubEnd) -> None:
    other = await Backend("v2").start()
    try:
        await hub_end.publish("web", other.port, release="2")
        # No sleep: publish waited for the proxy's confirmation.
        assert proxy.routes.lookup.version == hub_end.link.version
        status, body = await get(proxy, "web.test")
        assert status == 200 and '"label": "v2"' in body
    finally:
        await other.stop()


async def test_publish_and_drain_return_at_once_with_no_proxy_connected(
        hub_end: HubEnd, backend: Backend) -> None:
    started = time.monotonic()
    await hub_end.publish("web", backend.port)
    await hub_end.link.drain(Route("bindrop-app-web-1.service", "1", backend.port), 30)
    assert time.monotonic() - started < 5  # not the 30 s drain, nor a confirm wait


async def test_publish_gives_up_on_a_proxy_that_never_confirms(
        hub_end: HubEnd, backend: Backend) -> None:
    hub_end.link.confirm_timeout = 0.3
    peer = hub_end.link.connect("silent", alive=lambda: True)
    started = time.monotonic()
    await hub_end.publish("web", backend.port)
    assert 0.3 <= time.monotonic() - started < 5  # gave up, long before HANG
    hub_end.link.disconnect(peer)


async def test_drain_waits_for_the_request_in_flight_to_the_old_unit(
        proxy: ProxyServer, hub_end: HubEnd, backend: Backend) -> None:
    held = asyncio.ensure_future(get(proxy, "web.test", "/hold"))
    await asyncio.wait_for(backend.first_chunk.wait(), HANG)
    assert proxy.inflight.count("bindrop-app-web-1.service") == 1
    drain = asyncio.ensure_future(hub_end.link.drain(
        Route("bindrop-app-web-1.service", "1", backend.port), HANG))
    await asyncio.sleep(0.3)
    assert not drain.done()
    backend.release.set()
    assert await held == (200, "held by web")
    await asyncio.wait_for(drain, 5)
    assert proxy.inflight.count("bindrop-app-web-1.service") == 0


async def test_drain_gives_up_after_its_timeout(
        proxy: ProxyServer, hub_end: HubEnd, backend: Backend) -> None:
    held = asyncio.ensure_future(get(proxy, "web.test", "/hold"))
    await asyncio.wait_for(backend.first_chunk.wait(), HANG)
    started = time.monotonic()
    await hub_end.link.drain(Route("bindrop-app-web-1.service", "1", backend.port), 0.3)
    assert 0.3 <= time.monotonic() - started < 5  # gave up, long before HANG
    backend.release.set()
    await held


async def test_the_last_routes_keep_serving_while_the_hub_is_down_and_resync_after(
        proxy: ProxyServer, hub_end: HubEnd, backend: Backend) -> None:
    await hub_end.stop()
    await asyncio.sleep(0.3)
    assert not proxy.hub.connected.is_set()
    assert (await get(proxy, "web.test"))[0] == 200
    # Meanwhile the hub (a new process, say) moved the app elsewhere.
    other = await Backend("moved").start()
    try:
        await hub_end.publish("web", other.port, release="2")
        await hub_end.start()
        async with asyncio.timeout(HANG):
            await proxy.hub.connected.wait()
        status, body = await get(proxy, "web.test")
        assert status == 200 and '"label": "moved"' in body
    finally:
        await other.stop()


async def test_a_restarted_proxy_serves_its_snapshot_before_the_hub_answers(
        proxy: ProxyServer, hub_end: HubEnd, tmp_path: Path) -> None:
    await hub_end.stop()
    async with running_proxy(proxy_options(hub_end, tmp_path), wait_for_hub=False) as second:
        status, body = await get(second, "web.test")
        assert status == 200 and '"label": "web"' in body


async def test_a_proxy_without_snapshot_or_hub_answers_404(hub_end: HubEnd,
                                                          tmp_path: Path) -> None:
    await hub_end.stop()
    async with running_proxy(proxy_options(hub_end, tmp_path), wait_for_hub=False) as alone:
        assert (await get(alone, "web.test"))[0] == 404
