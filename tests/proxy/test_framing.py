"""Requests whose framing two parsers could read differently are refused, never forwarded.

A proxy that forwards such a request lets a visitor hide a second request inside the first
one's body (request smuggling). Each case here is answered with one 400 and the connection
closes, so the request after it (which names /smuggled) never reaches the app.
"""

from __future__ import annotations

import pytest

from bindrop.proxy.server import ProxyServer

from .test_http1 import exchange, statuses

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: web.test\r\n\r\n"

AMBIGUOUS = {
    "content-length and chunked": (b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
                                   b"0\r\n\r\n"),
    "two different lengths": (b"Content-Length: 5\r\nContent-Length: 0\r\n", b""),
    "chunked not last": (b"Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n"),
    "space before the colon": (b"Content-Length : 5\r\n", b""),
    "a length that is not a number": (b"Content-Length: 5x\r\n", b""),
}


@pytest.mark.parametrize("case", sorted(AMBIGUOUS))
async def test_ambiguous_framing_gets_400_and_nothing_behind_it_is_forwarded(
        proxy: ProxyServer, case: str) -> None:
    headers, body = AMBIGUOUS[case]
    raw = await exchange(proxy, b"POST /first HTTP/1.1\r\nHost: web.test\r\n" + headers
                         + b"\r\n" + body + SMUGGLED)
    assert statuses(raw) == [400]
    assert b"/smuggled" not in raw and b'"/first"' not in raw


async def test_a_plain_chunked_body_with_a_request_after_it_is_two_requests(
        proxy: ProxyServer) -> None:
    """The control case: the same bytes with unambiguous framing are served as two requests."""
    raw = await exchange(proxy, b"POST /first HTTP/1.1\r\nHost: web.test\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"
                                b"GET /second HTTP/1.1\r\nHost: web.test\r\nConnection: close"
                                b"\r\n\r\n")
    assert statuses(raw) == [200, 200]
    assert b'"/first"' in raw and b'"/second"' in raw


async def test_a_broken_chunk_mid_body_cuts_the_request_off_and_forwards_nothing_after_it(
        proxy: ProxyServer) -> None:
    """The head may already be on its way to the app (bodies stream); the broken body ends
    the connection: no answer of the app's comes back, and the bytes after it are not read
    as a request."""
    raw = await exchange(proxy, b"POST /first HTTP/1.1\r\nHost: web.test\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\nzz\r\n\r\n"
                                + SMUGGLED)
    assert statuses(raw) in ([], [400])
    assert b"/smuggled" not in raw and b'"/first"' not in raw
