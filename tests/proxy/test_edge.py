"""Issue 13: the edge as an attacker tries it, byte by byte (each case failed before).

Framing sent upstream is the proxy's decision, never a copy of the visitor's or the app's
bytes; a pooled upstream connection is reused only after an answer that ended exactly where
its framing said.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from bindrop.proxy.server import ProxyServer

from .kit import HANG, Backend, HubEnd, json_body, proxy_options, seen_headers
from .rawapp import OK, RawApp
from .test_http1 import exchange, statuses

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: web.test\r\n\r\n"


def paths(backend: Backend) -> list[object]:
    return [seen["raw_path"] for seen in backend.seen]


# -- 1. Connection naming the framing or Host ----------------------------------------------


async def test_connection_naming_content_length_smuggles_nothing(
        proxy: ProxyServer, backend: Backend) -> None:
    body = SMUGGLED
    raw = await exchange(proxy, b"POST /first HTTP/1.1\r\nHost: web.test\r\n"
                                b"Connection: keep-alive, Content-Length\r\n"
                                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                         + b"GET /last HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n")
    assert statuses(raw) == [200, 200]
    assert paths(backend) == ["/first", "/last"]
    assert backend.seen[0]["body"] == len(body)


async def test_connection_naming_host_does_not_strip_it(proxy: ProxyServer,
                                                       backend: Backend) -> None:
    raw = await exchange(proxy, b"GET /h HTTP/1.1\r\nHost: web.test\r\nConnection: close, Host"
                                b"\r\n\r\n")
    assert statuses(raw) == [200]
    assert seen_headers(backend.seen[0])["host"] == "web.test"


# -- 2. Content-Length with trailing whitespace ----------------------------------------------


async def test_a_content_length_with_trailing_space_forwards_its_body(
        proxy: ProxyServer, raw_app: RawApp) -> None:
    raw = await exchange(proxy, b"POST /a HTTP/1.1\r\nHost: api.test\r\nContent-Length: 5 \r\n"
                                b"\r\nhello"
                                b"GET /b HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
    assert statuses(raw) == [200, 200]
    assert raw_app.bodies == [b"hello", b""]
    assert [h.split(b" ")[1] for h in raw_app.heads] == [b"/a", b"/b"]
    assert b"Content-Length: 5\r\n" in raw_app.heads[0]


# -- 3. Trailers -----------------------------------------------------------------------------


async def test_trailers_of_a_chunked_request_never_become_headers(
        proxy: ProxyServer, backend: Backend) -> None:
    raw = await exchange(proxy, b"POST /t HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: "
                                b"chunked\r\n\r\n3\r\nabc\r\n0\r\nCookie: stolen=1\r\n"
                                b"Authorization: Basic eA==\r\nHost: evil.test\r\n\r\n"
                                b"GET /z HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n")
    assert statuses(raw) == [200, 200]
    seen = seen_headers(backend.seen[0])
    assert "cookie" not in seen and "authorization" not in seen
    assert seen["host"] == "web.test" and backend.seen[0]["body"] == 3


# -- 4. Two Host headers ----------------------------------------------------------------------


async def test_two_host_headers_get_400_and_nothing_is_forwarded(
        proxy: ProxyServer, backend: Backend) -> None:
    raw = await exchange(proxy, b"GET /x HTTP/1.1\r\nHost: nobody.test\r\nHost: web.test\r\n\r\n")
    assert statuses(raw) == [400]
    assert backend.seen == []


# -- 5. An app sending more than its answer ----------------------------------------------------


@pytest.mark.parametrize("answer", [
    OK + b"HTTP/1.1 200 OK\r\nX-Injected: 1\r\nContent-Length: 1\r\n\r\nX",
    b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nX-Injected: 1\r\n\r\n",
    OK + b"garbage",
], ids=["a second answer", "a body on 204", "garbage"])
async def test_bytes_after_a_complete_answer_close_the_upstream_connection(
        proxy: ProxyServer, raw_app: RawApp, answer: bytes,
        caplog: pytest.LogCaptureFixture) -> None:
    raw_app.answers[b"/poison"] = answer
    raw = await exchange(proxy, b"GET /poison HTTP/1.1\r\nHost: api.test\r\n\r\n"
                                b"GET /next HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n"
                                b"\r\n")
    assert b"X-Injected" not in raw
    assert statuses(raw) in ([200, 200], [204, 200])
    first = raw.partition(b"\r\n\r\n")[0]
    assert first.lower().count(b"content-length") <= 1
    assert raw.endswith(b"ok")
    assert raw_app.connections == 2  # the poisoned connection was not reused
    assert "upstream sent more data" in caplog.text


# -- 6. Interim answers -------------------------------------------------------------------------


async def test_an_early_hints_answer_and_the_final_one_in_one_packet_arrive_intact(
        proxy: ProxyServer, raw_app: RawApp) -> None:
    raw_app.answers[b"/hints"] = (b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n"
                                  b"\r\nHTTP/1.1 200 OK\r\nX-Final: yes\r\nContent-Length: 4\r\n"
                                  b"\r\nbody")
    raw = await exchange(proxy, b"GET /hints HTTP/1.1\r\nHost: api.test\r\nConnection: close"
                                b"\r\n\r\n")
    assert statuses(raw) == [103, 200]
    interim, _, final = raw.partition(b"\r\n\r\n")
    assert b"Link: </a.css>; rel=preload" in interim
    assert b"X-Final: yes" in final and final.endswith(b"\r\n\r\nbody")


async def test_a_100_continue_from_the_app_is_not_passed_on_twice(
        proxy: ProxyServer, raw_app: RawApp) -> None:
    raw_app.answers[b"/c"] = b"HTTP/1.1 100 Continue\r\n\r\n" + OK
    raw = await exchange(proxy, b"GET /c HTTP/1.1\r\nHost: api.test\r\nConnection: close"
                                b"\r\n\r\n")
    assert statuses(raw) == [200] and raw.endswith(b"ok")


# -- 7. A slow upload is not cut off by the answer timeout ---------------------------------------


async def test_an_upload_longer_than_the_answer_timeout_succeeds_while_it_flows(
        proxy: ProxyServer, backend: Backend) -> None:
    """The proxy fixture's upstream_timeout is 1 s; this upload takes about 3 s."""
    assert proxy.options.upstream_timeout == 1.0
    pieces, piece = 12, b"x" * 1000
    async with asyncio.timeout(HANG):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.ports[0])
        writer.write(b"POST /upload HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n" % (pieces * len(piece)))
        for _ in range(pieces):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.25)
        raw = await reader.read()
        writer.close()
    assert statuses(raw) == [200]
    assert json_body(raw) == {"received": pieces * len(piece)}


# -- 8. The visitor's address -------------------------------------------------------------------


def test_a_mapped_ipv4_address_is_plain_ipv4() -> None:
    from bindrop.proxy.http1 import plain_address
    assert plain_address("::ffff:127.0.0.1") == "127.0.0.1"
    assert plain_address("::1") == "::1"
    assert plain_address("2001:db8::1") == "2001:db8::1"


async def test_an_ipv4_visitor_on_a_dual_stack_socket_is_seen_as_plain_ipv4(
        hub_end: HubEnd, backend: Backend, tmp_path: object) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    await hub_end.publish("web", backend.port)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0))
    except OSError:
        sock.close()
        pytest.skip("no dual-stack sockets here")
    sock.listen(16)
    proxy = ProxyServer(proxy_options(hub_end, tmp_path))  # type: ignore[arg-type]
    await proxy.start([sock])
    try:
        async with asyncio.timeout(HANG):
            await proxy.hub.connected.wait()
        raw = await exchange(proxy, b"GET /me HTTP/1.1\r\nHost: web.test\r\nX-Forwarded-For: "
                                    b"6.6.6.6\r\nConnection: close\r\n\r\n")
    finally:
        await proxy.close()
    seen = seen_headers(json_body(raw))
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["forwarded"] == 'for=127.0.0.1;host="web.test";proto=http'



async def test_trailers_of_a_chunked_answer_never_become_answer_headers(
        proxy: ProxyServer, raw_app: RawApp) -> None:
    raw_app.answers[b"/trailers"] = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     b"2\r\nok\r\n0\r\nX-Injected: 1\r\nSet-Cookie: s=1\r\n\r\n")
    raw = await exchange(proxy, b"GET /trailers HTTP/1.1\r\nHost: api.test\r\nConnection: close"
                                b"\r\n\r\n")
    assert statuses(raw) == [200]
    assert b"X-Injected" not in raw and b"Set-Cookie" not in raw


async def test_an_unasked_101_gets_502_and_its_connection_is_never_reused(
        proxy: ProxyServer, raw_app: RawApp) -> None:
    raw_app.answers[b"/switch"] = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                   b"Connection: Upgrade\r\n\r\n")
    raw = await exchange(proxy, b"GET /switch HTTP/1.1\r\nHost: api.test\r\n\r\n"
                                b"GET /next HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n"
                                b"\r\n")
    assert statuses(raw) == [502, 200] and raw.endswith(b"ok")
    assert raw_app.connections == 2
