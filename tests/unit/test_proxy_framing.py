"""The request framing decision (issue 13), as a pure function: a table of heads."""

from __future__ import annotations

import pytest

from bindrop.proxy.framing import Refusal, parse_request_framing

HOST = (b"Host", b"a.test")

REFUSED = [
    ("two Hosts", "GET", b"/", "1.1", [HOST, (b"Host", b"b.test")], 400),
    ("the same Host twice", "GET", b"/", "1.1", [HOST, HOST], 400),
    ("no Host in 1.1", "GET", b"/", "1.1", [], 400),
    ("an empty Host", "GET", b"/", "1.1", [(b"Host", b"")], 400),
    ("two lengths", "POST", b"/", "1.1", [HOST, (b"Content-Length", b"5"),
                                         (b"Content-Length", b"5")], 400),
    ("a length that is no number", "POST", b"/", "1.1", [HOST, (b"Content-Length", b"5x")],
     400),
    ("a huge length", "POST", b"/", "1.1", [HOST, (b"Content-Length", b"9" * 19)], 400),
    ("TE in 1.0", "POST", b"/", "1.0", [HOST, (b"Transfer-Encoding", b"chunked")], 400),
    ("gzip, chunked", "POST", b"/", "1.1", [HOST, (b"Transfer-Encoding", b"gzip, chunked")],
     501),
    ("chunked twice", "POST", b"/", "1.1", [HOST, (b"Transfer-Encoding", b"chunked"),
                                           (b"Transfer-Encoding", b"chunked")], 501),
    ("HTTP/2.0", "GET", b"/", "2.0", [HOST], 505),
    ("HTTP/0.9", "GET", b"/", "0.9", [HOST], 505),
    ("OPTIONS *", "OPTIONS", b"*", "1.1", [HOST], 400),
    ("an authority target", "CONNECT", b"a.test:443", "1.1", [HOST], 400),
    ("an absolute target for another host", "GET", b"http://b.test/x", "1.1", [HOST], 400),
    ("an absolute target with userinfo", "GET", b"http://u@a.test/x", "1.1", [HOST], 400),
]


@pytest.mark.parametrize(("case", "method", "target", "version", "headers", "status"),
                         REFUSED, ids=[row[0] for row in REFUSED])
def test_heads_two_parsers_could_read_differently_are_refused(
        case: str, method: str, target: bytes, version: str,
        headers: list[tuple[bytes, bytes]], status: int) -> None:
    with pytest.raises(Refusal) as caught:
        parse_request_framing(method, target, version, headers)
    assert caught.value.status == status


def test_a_length_with_trailing_whitespace_is_that_length() -> None:
    framing = parse_request_framing("POST", b"/", "1.1", [HOST, (b"Content-Length", b"5 ")])
    assert (framing.content_length, framing.chunked) == (5, False)


def test_chunked_in_any_case_is_chunked() -> None:
    framing = parse_request_framing("POST", b"/", "1.1", [HOST,
                                                         (b"transfer-encoding", b"Chunked")])
    assert framing.chunked and framing.content_length is None


def test_an_absolute_target_for_its_host_becomes_a_path() -> None:
    framing = parse_request_framing("GET", b"HTTP://A.test?q=1", "1.1", [HOST])
    assert framing.target == b"/?q=1" and framing.host == b"A.test"


def test_http10_may_omit_the_host_and_expect_counts_only_in_11() -> None:
    framing = parse_request_framing("GET", b"/", "1.0", [(b"Expect", b"100-continue")])
    assert framing.host is None and not framing.expect_continue
    framing = parse_request_framing("GET", b"/", "1.1", [HOST, (b"Expect", b"100-Continue")])
    assert framing.expect_continue
