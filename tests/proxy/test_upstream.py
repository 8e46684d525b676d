"""The proxy's own upstream client against apps that answer in unusual ways."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bindrop.proxy.server import ProxyServer

from . import kit
from .kit import HANG, Backend, HubEnd

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def raw_app(hub_end: HubEnd) -> AsyncIterator[Callable[[Answer], Awaitable[None]]]:
    """Route ``web`` to a bare TCP server answering each connection with ``answer``."""
    servers: list[asyncio.Server] = []

    async def serve(answer: Answer) -> None:
        async def answer_and_close(reader: asyncio.StreamReader,
                                   writer: asyncio.StreamWriter) -> None:
            try:
                await answer(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(answer_and_close, "127.0.0.1", 0)
        servers.append(server)
        await hub_end.publish("web", server.sockets[0].getsockname()[1], release="raw")

    yield serve
    for server in servers:
        server.close()
        await server.wait_closed()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def ask(proxy: ProxyServer, request: bytes = b"GET / HTTP/1.1\r\nHost: web.test\r\n"
              b"Connection: close\r\n\r\n") -> bytes:
    """Everything the proxy answers ``request`` with (ConnectionError if it cuts us off)."""
    async with asyncio.timeout(HANG):
        return await kit.ask(proxy.ports[0], request)


async def test_upstream_connections_are_kept_alive_and_reused(proxy: ProxyServer,
                                                              backend: Backend) -> None:
    assert proxy.upstream_pool is not None
    for _ in range(3):
        assert (await ask(proxy)).startswith(b"HTTP/1.1 200")
        assert proxy.upstream_pool.idle_count(backend.port) == 1


async def test_a_head_answer_has_no_body_and_the_connection_serves_on(
        proxy: ProxyServer, backend: Backend) -> None:
    raw = await ask(proxy, b"HEAD /x HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b""
    assert b'"raw_path": "/y"' in await ask(proxy, b"GET /y HTTP/1.1\r\nHost: web.test\r\n"
                                                   b"Connection: close\r\n\r\n")


async def test_a_body_that_ends_with_the_connection_is_passed_whole(
        proxy: ProxyServer, raw_app: Callable[[Answer], Awaitable[None]]) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"the end")
        writer.close()

    await raw_app(answer)
    raw = await ask(proxy)
    assert raw.startswith(b"HTTP/1.1 200")
    assert b"until" in raw and raw.rstrip(b"\r\n0").endswith(b"the end")


async def test_an_app_that_closes_its_kept_alive_connection_costs_no_request(
        proxy: ProxyServer, raw_app: Callable[[Answer], Awaitable[None]]) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # no "Connection: close": the proxy pooled it

    await raw_app(answer)
    for _ in range(5):
        assert (await ask(proxy)).startswith(b"HTTP/1.1 200")


async def test_an_answer_that_is_not_http_gets_502(
        proxy: ProxyServer, raw_app: Callable[[Answer], Awaitable[None]]) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()

    await raw_app(answer)
    assert (await ask(proxy)).startswith(b"HTTP/1.1 502")


async def test_an_app_that_dies_mid_body_cuts_the_visitor_off(
        proxy: ProxyServer, raw_app: Callable[[Answer], Awaitable[None]]) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.transport.abort()
        writer.close()

    await raw_app(answer)
    try:
        raw = await ask(proxy)
    except ConnectionError:
        return
    assert raw.startswith(b"HTTP/1.1 200") and not raw.endswith(b"0\r\n\r\n")


async def test_shared_timeouts_fire_late_never_early_and_leave_no_timer_behind() -> None:
    from bindrop.proxy.upstream import Timeouts

    loop = asyncio.get_running_loop()
    timeouts = Timeouts(grain=0.05)
    slow, fast = loop.create_future(), loop.create_future()
    started = loop.time()
    due_slow = timeouts.add(loop, slow, 0.1)
    due_fast = timeouts.add(loop, fast, 0.1)
    assert due_slow is due_fast  # one timer for both
    fast.set_result(None)
    timeouts.discard(due_fast, fast)
    with pytest.raises(TimeoutError):
        await slow
    # never early; late by at most a grain, and whatever a loaded machine adds
    assert 0.1 <= loop.time() - started + 0.002 < 2.0
    timeouts.discard(due_slow, slow)
    # Waits all done and a newer span started: the older span's timer is cancelled.
    done = loop.create_future()
    first = timeouts.add(loop, done, 10)
    done.set_result(None)
    timeouts.discard(first, done)
    await asyncio.sleep(0.06)
    later = loop.create_future()
    second = timeouts.add(loop, later, 10)
    assert second is not first and first.timer.cancelled()
    assert list(timeouts._due) == [second.slot]
    second.timer.cancel()
