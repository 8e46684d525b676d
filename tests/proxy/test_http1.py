"""The proxy's own HTTP/1.1 server side, spoken to byte by byte."""

from __future__ import annotations

import asyncio
import re

from bindrop.proxy.server import ProxyServer

from .kit import HANG, Backend, ask


async def exchange(proxy: ProxyServer, data: bytes) -> bytes:
    """Send ``data``; everything the proxy answers until it closes the connection."""
    async with asyncio.timeout(HANG):
        return await ask(proxy.ports[0], data)


def statuses(raw: bytes) -> list[int]:
    """The status of each answer in ``raw`` (bodies here never contain a status line)."""
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


async def test_pipelined_requests_are_answered_in_order(proxy: ProxyServer) -> None:
    raw = await exchange(proxy, b"GET /one HTTP/1.1\r\nHost: web.test\r\n\r\n"
                                b"GET /two HTTP/1.1\r\nHost: nobody.test\r\n\r\n"
                                b"GET /three HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n"
                                b"\r\n")
    assert statuses(raw) == [200, 404, 200]
    assert raw.index(b'"/one"') < raw.index(b"No app answers") < raw.index(b'"/three"')


async def test_a_kept_alive_connection_carries_request_after_request(
        proxy: ProxyServer) -> None:
    async with asyncio.timeout(HANG):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.ports[0])
        try:
            for i in range(3):
                writer.write(f"GET /{i} HTTP/1.1\r\nHost: web.test\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                assert f'"raw_path": "/{i}"'.encode() in await reader.readexactly(length)
        finally:
            writer.close()


async def test_an_http10_visitor_gets_its_answer_and_the_connection_closes(
        proxy: ProxyServer) -> None:
    raw = await exchange(proxy, b"GET /old HTTP/1.0\r\nHost: web.test\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"chunked" not in head.lower()
    assert b'"raw_path": "/old"' in body


async def test_a_streamed_answer_is_chunked_for_http11_and_ends_with_the_connection_for_10(
        proxy: ProxyServer) -> None:
    raw = await exchange(proxy, b"GET /trickle HTTP/1.1\r\nHost: web.test\r\n"
                                b"Connection: close\r\n\r\n")
    assert b"transfer-encoding: chunked" in raw.lower() and raw.endswith(b"0\r\n\r\n")
    raw = await exchange(proxy, b"GET /trickle HTTP/1.0\r\nHost: web.test\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"chunked" not in head.lower() and body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"


async def test_a_request_that_is_not_http_gets_400_and_a_long_line_414(
        proxy: ProxyServer) -> None:
    assert statuses(await exchange(proxy, b"HELLO THERE\r\n\r\n")) == [400]
    long_line = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: web.test\r\n\r\n"
    assert statuses(await exchange(proxy, long_line)) == [414]


async def test_a_visitor_that_expects_100_continue_gets_it_before_the_answer(
        proxy: ProxyServer, backend: Backend) -> None:
    async with asyncio.timeout(HANG):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.ports[0])
        try:
            writer.write(b"POST /upload HTTP/1.1\r\nHost: web.test\r\nContent-Length: 5\r\n"
                         b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
            assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(b"hello")
            rest = await reader.read()
        finally:
            writer.close()
    assert rest.startswith(b"HTTP/1.1 200") and rest.endswith(b'{"received": 5}')


async def test_an_upgrade_the_app_refuses_gets_the_apps_answer(proxy: ProxyServer) -> None:
    raw = await exchange(proxy, b"GET /plain HTTP/1.1\r\nHost: web.test\r\n"
                                b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
                                b"Sec-WebSocket-Version: 13\r\n"
                                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert statuses(raw) == [200] and b'"raw_path": "/plain"' in raw


async def test_head_gets_the_headers_of_get_and_no_body(proxy: ProxyServer) -> None:
    raw = await exchange(proxy, b"HEAD /nobody-here HTTP/1.1\r\nHost: nobody.test\r\n"
                                b"Connection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404") and b"content-length: " in head.lower()
    assert body == b""


async def test_a_visitor_who_leaves_mid_request_is_no_longer_in_flight(
        proxy: ProxyServer, backend: Backend) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", proxy.ports[0])
    writer.write(b"GET /hold HTTP/1.1\r\nHost: web.test\r\n\r\n")
    await writer.drain()
    await asyncio.wait_for(backend.first_chunk.wait(), HANG)
    assert proxy.inflight.count("bindrop-app-web-1.service") == 1
    writer.close()  # gone while the app still holds the answer: a drain must not wait for it
    async with asyncio.timeout(HANG):
        while proxy.inflight.count("bindrop-app-web-1.service"):
            await asyncio.sleep(0.02)
    backend.release.set()


async def test_a_request_in_flight_when_the_proxy_stops_gets_its_whole_answer(
        proxy: ProxyServer, backend: Backend) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.ports[0])
    try:
        writer.write(b"GET /hold HTTP/1.1\r\nHost: web.test\r\n\r\n")
        await writer.drain()
        await asyncio.wait_for(backend.first_chunk.wait(), HANG)
        closing = asyncio.ensure_future(proxy.close())
        await asyncio.sleep(0.3)
        assert not closing.done()  # waits for the answer in flight
        backend.release.set()
        answer = await asyncio.wait_for(reader.read(), HANG)  # then closes the connection
        await asyncio.wait_for(closing, HANG)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"held by web")
    assert b"connection: close" in answer.lower()


async def test_a_tab_before_a_content_length_is_refused_but_not_in_a_body_or_a_space(
        proxy: ProxyServer, backend: Backend) -> None:
    """As nginx: a tab before the Content-Length value is 400 (llhttp drops it, so the raw
    head is looked at); the same bytes inside a body are the app's, and a space is fine."""
    for length in (b"Content-Length:\t5", b"content-length: \t5", b"CONTENT-LENGTH:\t 5"):
        raw = await exchange(proxy, b"POST /t HTTP/1.1\r\nHost: web.test\r\n" + length
                             + b"\r\nConnection: close\r\n\r\nhello")
        assert statuses(raw) == [400], (length, raw[:200])
    body = b"x\r\nContent-Length:\t5\r\n"
    raw = await exchange(proxy, b"POST /t HTTP/1.1\r\nHost: web.test\r\nContent-Length: %d"
                         b"\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    assert statuses(raw) == [200] and b'"body": %d' % len(body) in raw
    raw = await exchange(proxy, b"POST /t HTTP/1.1\r\nHost: web.test\r\nContent-Length: 5"
                         b"\r\nX-Note: a\ttab elsewhere\r\nConnection: close\r\n\r\nhello")
    assert statuses(raw) == [200]
    assert [s["body"] for s in backend.seen] == [len(body), 5]  # the refused never got there
