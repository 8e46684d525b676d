"""Issue 13 from the outside: the installed, socket-activated proxy in a real systemd.

Nothing smuggled, the app sees exactly 127.0.0.1 whatever the visitor claims, 103 + 200
arrive intact, two Hosts get 400, a dribbling visitor is dropped within 30 s, and a slow
steady upload outlasting the answer timeout succeeds (20 s here, the answer timeout 4 s).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from bindrop.machine import Machine
from bindrop.settings import Settings
from tests.proxy.kit import Backend, HubEnd, ask, status_of
from tests.proxy.rawapp import RawApp

from .hubkit import HANG
from .proxykit import free_port, installed_proxy, running_hub_end

pytestmark = pytest.mark.integration

#: The proxy's environment beyond the defaults (as an override of the installed unit would).
TIMEOUTS = {"BINDROP_PROXY_UPSTREAM_TIMEOUT": "4", "BINDROP_PROXY_UPLOAD_IDLE_TIMEOUT": "5"}


@pytest.fixture
async def edge_hub(settings: Settings) -> AsyncIterator[HubEnd]:
    async with running_hub_end(settings, "web", "raw") as end:
        yield end


@pytest.fixture
def edge_port(machine: Machine, settings: Settings) -> Iterator[int]:
    """The proxy's units from deploy/, as install renders them, on a free port."""
    with installed_proxy(machine, settings, free_port(), TIMEOUTS) as port:
        yield port


async def send(port: int, data: bytes) -> bytes:
    async with asyncio.timeout(HANG):
        return await ask(port, data)


async def test_the_installed_proxy_holds_the_edge_from_outside(
        machine: Machine, edge_port: int, edge_hub: HubEnd) -> None:
    backend = await Backend("web").start()
    raw_app = await RawApp().start()
    raw_app.answers[b"/hints"] = (b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload"
                                  b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
    await edge_hub.publish("web", backend.port)
    await edge_hub.publish("raw", raw_app.port, release="2")
    port = edge_port
    try:
        async with asyncio.timeout(HANG):  # the first connection starts the service
            while status_of(await send(port, b"GET / HTTP/1.1\r\nHost: web.test\r\n"
                                             b"Connection: close\r\n\r\n")) != 200:
                await asyncio.sleep(0.2)

        # The app sees exactly 127.0.0.1, whatever the visitor claims.
        backend.seen.clear()
        raw = await send(port, b"GET /who HTTP/1.1\r\nHost: web.test\r\nX-Forwarded-For: "
                               b"6.6.6.6\r\nX_Forwarded_For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n"
                               b"Forwarded: for=6.6.6.6\r\nConnection: close\r\n\r\n")
        seen = {k.lower(): v for k, v in json.loads(raw.partition(b"\r\n\r\n")[2])["headers"]}
        assert seen["x-forwarded-for"] == "127.0.0.1"
        assert seen["x-real-ip"] == "127.0.0.1"
        assert seen["forwarded"].startswith("for=127.0.0.1;")
        assert "x_forwarded_for" not in seen

        # Nothing smuggled through Connection.
        backend.seen.clear()
        hidden = b"GET /smuggled HTTP/1.1\r\nHost: web.test\r\n\r\n"
        raw = await send(port, b"POST /first HTTP/1.1\r\nHost: web.test\r\nConnection: "
                               b"keep-alive, Content-Length\r\nContent-Length: %d\r\n\r\n%s"
                               % (len(hidden), hidden) + b"GET /last HTTP/1.1\r\nHost: "
                               b"web.test\r\nConnection: close\r\n\r\n")
        assert [s["raw_path"] for s in backend.seen] == ["/first", "/last"]

        # 103 + 200, intact.
        raw = await send(port, b"GET /hints HTTP/1.1\r\nHost: raw.test\r\nConnection: close"
                               b"\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n")
        assert b"\r\n\r\nHTTP/1.1 200 OK\r\n" in raw and raw.endswith(b"\r\n\r\nfinal")

        # Two Hosts: 400.
        raw = await send(port, b"GET / HTTP/1.1\r\nHost: raw.test\r\nHost: web.test\r\n\r\n")
        assert status_of(raw) == 400

        await asyncio.gather(_dribbler_is_dropped(port), _slow_upload_succeeds(port))
    finally:
        await backend.stop()
        await raw_app.stop()


async def _dribbler_is_dropped(port: int) -> None:
    """A head dribbled a byte a second is dropped (408) within 30 s."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    raw = b""
    try:
        async with asyncio.timeout(40):
            for byte in b"GET / HTTP/1.1\r\nHost: web.test\r\nX-Slow: " + b"a" * 100:
                writer.write(bytes([byte]))
                try:
                    raw = await asyncio.wait_for(reader.read(), 1.0)
                    break
                except TimeoutError:
                    continue
    finally:
        writer.close()
    assert raw.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 30


async def _slow_upload_succeeds(port: int) -> None:
    """20 s of upload at a steady pace, past the 4 s answer timeout."""
    piece, pieces = b"u" * 4096, 20
    async with asyncio.timeout(60):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"POST /upload HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n" % (len(piece) * pieces))
            for _ in range(pieces):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(1.0)
            raw = await reader.read()
        finally:
            writer.close()
    assert status_of(raw) == 200
    assert json.loads(raw.partition(b"\r\n\r\n")[2]) == {"received": len(piece) * pieces}
