"""Health checks against real sockets on 127.0.0.1 (port 0)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from bindrop.errors import NotReady
from bindrop.hub.health import HealthCheck, probe_http, probe_tcp, wait_until_ready


async def _http_server(status: int) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def ok_server() -> AsyncIterator[int]:
    server, port = await _http_server(204)
    yield port
    server.close()
    await server.wait_closed()


async def test_http_check_passes_on_2xx(ok_server: int) -> None:
    assert (await probe_http("127.0.0.1", ok_server, "/up", 2)).ok


async def test_http_check_fails_on_500_and_says_so() -> None:
    server, port = await _http_server(500)
    try:
        result = await probe_http("127.0.0.1", port, "/up", 2)
    finally:
        server.close()
        await server.wait_closed()
    assert not result.ok and "answered 500" in result.detail


async def test_tcp_check_fails_on_refused_port() -> None:
    result = await probe_tcp("127.0.0.1", _free_port(), 2)
    assert not result.ok and "refused" in result.detail


async def test_wait_until_ready_passes_once_the_app_listens() -> None:
    port = _free_port()

    async def listen_later() -> asyncio.Server:
        await asyncio.sleep(0.3)
        return await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)

    later = asyncio.create_task(listen_later())
    result = await wait_until_ready(HealthCheck(timeout=10, interval=0.05), port)
    server = await later
    server.close()
    await server.wait_closed()
    assert result.ok


async def test_wait_until_ready_times_out_with_the_last_reason() -> None:
    with pytest.raises(NotReady, match=r"not ready after 0.3s \(TCP connect\).*refused"):
        await wait_until_ready(HealthCheck(timeout=0.3, interval=0.05), _free_port())


async def test_wait_until_ready_stops_at_once_when_the_unit_is_gone() -> None:
    with pytest.raises(NotReady, match="exited with status 1"):
        await wait_until_ready(HealthCheck(timeout=30), _free_port(),
                               gone=lambda: "exited with status 1")


async def test_changes_elsewhere_do_not_make_the_check_probe_faster() -> None:
    requests = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        requests += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 503 Not yet\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def changed() -> None:  # a very busy hub: something changes every millisecond
        await asyncio.sleep(0.001)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(NotReady, match="answered 503"):
            await wait_until_ready(HealthCheck(path="/up", timeout=0.5, interval=0.1), port,
                                   changed=changed)
    finally:
        server.close()
        await server.wait_closed()
    # 10, 20, 40, 80 ms, then every 100 ms: about nine in 0.5 s, not one per change (~500)
    assert 1 <= requests <= 12
