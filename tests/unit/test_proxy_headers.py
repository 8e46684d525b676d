"""The proxy's header rules, as pure functions."""

from __future__ import annotations

import pytest

from bindrop.proxy.headers import (
    RawHeaders,
    build_downstream_headers,
    build_upstream_headers,
    hop_by_hop,
    is_websocket_upgrade,
    pick_client,
    pick_request_id,
    request_host,
    response_has_body,
)


def headers(*pairs: tuple[str, str]) -> RawHeaders:
    return [(k.encode(), v.encode()) for k, v in pairs]


def text(raw: RawHeaders) -> list[tuple[str, str]]:
    return [(k.decode(), v.decode()) for k, v in raw]


def getall(raw: RawHeaders, name: str) -> list[str]:
    return [v for k, v in text(raw) if k.lower() == name.lower()]


def test_hop_by_hop_includes_the_fixed_set_and_what_connection_names() -> None:
    names = hop_by_hop(headers(("Connection", "keep-alive, X-Private"),
                               ("Connection", "x-other")))
    assert {b"connection", b"keep-alive", b"te", b"transfer-encoding", b"upgrade",
            b"x-private", b"x-other"} <= names


def test_removing_hop_by_hop_keeps_order_and_repeats_of_the_rest() -> None:
    out = build_downstream_headers(headers(
        ("Set-Cookie", "a=1"), ("Connection", "close, X-P"), ("X-P", "1"), ("Set-Cookie", "b=2"),
        ("Transfer-Encoding", "chunked"), ("Content-Length", "3"), ("X-Request-Id", "app")), "r")
    assert text(out) == [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Content-Length", "3"),
                         ("X-Request-Id", "app")]


def test_x_forwarded_for_is_set_to_the_visitor_not_appended_to_what_came_in() -> None:
    out = build_upstream_headers(headers(("Host", "a.test"), ("X-Forwarded-For", "1.1.1.1"),
                                         ("X-Forwarded-For", "2.2.2.2"),
                                         ("Forwarded", "for=6.6.6.6"), ("X-Real-IP", "7.7.7.7")),
                                 client="9.9.9.9", scheme="https", request_id="r1")
    assert getall(out, "X-Forwarded-For") == ["9.9.9.9"]
    assert getall(out, "Forwarded") == ['for=9.9.9.9;host="a.test";proto=https']
    assert getall(out, "X-Real-IP") == ["9.9.9.9"]


def test_a_trusted_proxys_chain_is_kept_and_extended() -> None:
    out = build_upstream_headers(headers(("Host", "a.test"), ("X-Forwarded-For", "1.1.1.1"),
                                         ("X-Forwarded-Proto", "https"),
                                         ("Forwarded", "for=1.1.1.1;proto=https")),
                                 client="10.0.0.2", scheme="http", request_id="r1",
                                 trusted=True, visitor="1.1.1.1")
    assert getall(out, "X-Forwarded-For") == ["1.1.1.1, 10.0.0.2"]
    assert getall(out, "X-Forwarded-Proto") == ["https"]
    assert getall(out, "Forwarded") == ['for=1.1.1.1;proto=https, '
                                        'for=10.0.0.2;host="a.test";proto=http']
    assert getall(out, "X-Real-IP") == ["1.1.1.1"]


def test_underscore_spellings_of_the_proxys_headers_are_dropped() -> None:
    out = build_upstream_headers(headers(("Host", "a.test"), ("X_Forwarded_For", "1.1.1.1"),
                                         ("x_forwarded_proto", "https"), ("Content_Length", "5"),
                                         ("X_Custom", "kept")),
                                 client="9.9.9.9", scheme="http", request_id="r1")
    names = [name.lower() for name, _ in text(out)]
    assert not [n for n in names if "_" in n and n != "x_custom"]
    assert getall(out, "X_Custom") == ["kept"]


def test_connection_can_never_name_host_or_the_framing() -> None:
    out = build_upstream_headers(headers(("Host", "a.test"), ("Connection", "Host, Content-Length"),
                                         ("Content-Length", "5")),
                                 client="9.9.9.9", scheme="http", request_id="r1")
    assert getall(out, "Host") == ["a.test"]
    assert getall(out, "Content-Length") == []  # the proxy writes the framing itself


def test_the_visitor_behind_trusted_proxies_is_the_rightmost_untrusted_address() -> None:
    def trusted(address: str) -> bool:
        return address.startswith("10.")
    chain = headers(("X-Forwarded-For", "6.6.6.6, 1.1.1.1"), ("X-Forwarded-For", "10.0.0.9"))
    assert pick_client("10.0.0.2", chain, trusted) == "1.1.1.1"
    assert pick_client("8.8.8.8", chain, trusted) == "8.8.8.8"
    assert pick_client("10.0.0.2", [], trusted) == "10.0.0.2"


def test_forwarded_proto_host_and_request_id_are_set_not_trusted() -> None:
    out = build_upstream_headers(headers(("Host", "a.test:8080"), ("X-Forwarded-Proto", "ftp"),
                                         ("X-Forwarded-Host", "evil.test"),
                                         ("X-Request-Id", "client-1")),
                                 client="9.9.9.9", scheme="https", request_id="r1")
    assert getall(out, "X-Forwarded-Proto") == ["https"]
    assert getall(out, "X-Forwarded-Host") == ["a.test:8080"]
    assert getall(out, "X-Request-Id") == ["r1"]
    assert getall(out, "Host") == ["a.test:8080"]


def test_upstream_headers_without_a_client_address_have_no_empty_forwarded_for() -> None:
    out = build_upstream_headers(headers(("Host", "a.test")), client=None, scheme="http",
                                 request_id="r")
    assert getall(out, "X-Forwarded-For") == []


def test_downstream_headers_drop_hop_by_hop_and_carry_the_request_id() -> None:
    out = build_downstream_headers(headers(("Keep-Alive", "timeout=5"), ("Connection", "close"),
                                           ("Content-Type", "text/plain")), "r1")
    assert text(out) == [("Content-Type", "text/plain"), ("X-Request-Id", "r1")]


@pytest.mark.parametrize(("given", "kept"), [
    ("abc-123", True), ("0f8e1c2a/9", True), ("", False), ("a b", False),
    ("x" * 201, False), ("<script>", False),
])
def test_a_client_request_id_is_kept_only_when_short_and_plain(given: str, kept: bool) -> None:
    assert pick_request_id(given.encode(), "new") == (given if kept else "new")


@pytest.mark.parametrize(("method", "status", "body"), [
    ("GET", 200, True), ("HEAD", 200, False), ("GET", 204, False), ("GET", 304, False),
    ("GET", 101, False), ("POST", 201, True), ("GET", 404, True),
])
def test_which_responses_carry_a_body(method: str, status: int, body: bool) -> None:
    assert response_has_body(method, status) is body


@pytest.mark.parametrize(("pairs", "upgrade"), [
    ((("Connection", "Upgrade"), ("Upgrade", "websocket")), True),
    ((("Connection", "keep-alive, upgrade"), ("Upgrade", "WebSocket")), True),
    ((("Upgrade", "websocket"),), False),
    ((("Connection", "upgrade"), ("Upgrade", "h2c")), False),
])
def test_a_websocket_upgrade_needs_both_headers(pairs: tuple[tuple[str, str], ...],
                                                upgrade: bool) -> None:
    assert is_websocket_upgrade(headers(*pairs)) is upgrade


@pytest.mark.parametrize(("host", "name"), [
    ("Example.COM", "example.com"), ("example.com:8080", "example.com"),
    ("example.com.", "example.com"), ("[::1]:80", "[::1]"), ("", ""), (None, ""),
])
def test_the_requested_host_is_lowercased_without_port_or_trailing_dot(
        host: str | None, name: str) -> None:
    assert request_host(host) == name
