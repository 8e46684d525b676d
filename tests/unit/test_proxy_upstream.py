"""Pure parts of the proxy's upstream client: the request head and chunk framing."""

from __future__ import annotations

from bindrop.proxy.upstream import frame_chunk, render_request_head


def test_the_request_head_is_sent_as_given_with_the_raw_path() -> None:
    head = render_request_head("GET", b"/a/../b%2F?q=1", [(b"Host", b"web.test"),
                                                          (b"X-Two", b"a"), (b"X-Two", b"b")])
    assert head == (b"GET /a/../b%2F?q=1 HTTP/1.1\r\nHost: web.test\r\nX-Two: a\r\n"
                    b"X-Two: b\r\n\r\n")


def test_a_body_of_unknown_length_is_announced_as_chunked() -> None:
    head = render_request_head("POST", b"/up", [(b"Host", b"web.test")], chunked=True)
    assert head.endswith(b"Host: web.test\r\nTransfer-Encoding: chunked\r\n\r\n")


def test_bytes_that_are_not_utf8_go_out_as_they_came_in() -> None:
    head = render_request_head("GET", b"/caf\xe9", [(b"X-Name", b"caf\xe9")])
    assert head.startswith(b"GET /caf\xe9 HTTP/1.1\r\n") and b"X-Name: caf\xe9\r\n" in head


def test_chunks_are_framed_with_their_hex_size_and_the_last_is_empty() -> None:
    assert frame_chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert frame_chunk(b"") == b"0\r\n\r\n"
