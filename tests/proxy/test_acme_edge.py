"""The ACME challenge path and the redirect to https, as a stranger reaches them: answered
from what the hub published, before routing, never from an app or the disk."""

from __future__ import annotations

import asyncio

import pytest

from bindrop.client.proxywire import TlsState, parse_message
from bindrop.errors import InvalidInput
from bindrop.proxy.server import ProxyServer
from bindrop.store import AppConfig, Store

from .kit import HANG, Backend, HubEnd, raw_request

TOKEN = "tok_EN-123"
ANSWER = f"{TOKEN}.thumb-print_456"


async def publish(hub_end: HubEnd, proxy: ProxyServer, challenges: dict[str, str],
                  redirect: tuple[str, ...] = ()) -> None:
    await hub_end.link.announce(TlsState(challenges=challenges, redirect=frozenset(redirect),
                                         certs=0))
    async with asyncio.timeout(HANG):
        while proxy.tls.state.version != hub_end.link.version:
            await asyncio.sleep(0.01)


def get(host: str, path: str, method: str = "GET") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n").encode()


async def test_a_published_token_is_answered_for_any_host_and_reaches_no_app(
        hub_end: HubEnd, proxy: ProxyServer, backend: Backend) -> None:
    await publish(hub_end, proxy, challenges={TOKEN: ANSWER})
    for host in ("web.test", "nobody-routes-this.example.com"):
        raw = await raw_request(proxy.ports[0], get(host, f"/.well-known/acme-challenge/{TOKEN}"))
        assert raw.startswith(b"HTTP/1.1 200"), raw
        assert raw.endswith(ANSWER.encode())
    # HTTP/1.1 with an empty Host is refused before anything answers it (as nginx does).
    raw = await raw_request(proxy.ports[0], get("", f"/.well-known/acme-challenge/{TOKEN}"))
    assert raw.startswith(b"HTTP/1.1 400"), raw
    assert backend.seen == []


async def test_unknown_tokens_traversal_and_other_methods_get_404_not_the_app(
        hub_end: HubEnd, proxy: ProxyServer, backend: Backend) -> None:
    await publish(hub_end, proxy, challenges={TOKEN: ANSWER})
    for method, path in (("GET", "/.well-known/acme-challenge/unknown"),
                         ("GET", f"/.well-known/acme-challenge/{TOKEN}/"),
                         ("GET", f"/.well-known/acme-challenge/../{TOKEN}"),
                         ("GET", f"/.well-known/acme-challenge/{TOKEN}?x=1"),
                         ("GET", "/.well-known/acme-challenge/"),
                         ("POST", f"/.well-known/acme-challenge/{TOKEN}")):
        raw = await raw_request(proxy.ports[0], get("web.test", path, method))
        assert raw.startswith(b"HTTP/1.1 404"), (method, path, raw)
        assert ANSWER.encode() not in raw
    assert backend.seen == []


async def test_a_withdrawn_token_is_no_longer_answered(
        hub_end: HubEnd, proxy: ProxyServer) -> None:
    await publish(hub_end, proxy, challenges={TOKEN: ANSWER})
    await publish(hub_end, proxy, challenges={})
    raw = await raw_request(proxy.ports[0], get("web.test", f"/.well-known/acme-challenge/{TOKEN}"))
    assert raw.startswith(b"HTTP/1.1 404")


async def test_a_challenge_for_an_on_demand_app_does_not_wake_it(
        hub_end: HubEnd, proxy: ProxyServer, store: Store) -> None:
    store.create_app(AppConfig(name="sleepy", hosts=("sleepy.example.com",), on_demand=True))
    woken: list[str] = []

    async def wake(app: str, timeout: float) -> str | None:
        woken.append(app)
        return "not in this test"

    proxy.hub.wake = wake  # type: ignore[method-assign]
    hub_end.link.refresh()
    await publish(hub_end, proxy, challenges={TOKEN: ANSWER})
    raw = await raw_request(proxy.ports[0],
                            get("sleepy.example.com", f"/.well-known/acme-challenge/{TOKEN}"))
    assert raw.startswith(b"HTTP/1.1 200")
    assert woken == []


async def test_a_host_with_a_certificate_redirects_except_the_challenge_path(
        hub_end: HubEnd, proxy: ProxyServer, backend: Backend) -> None:
    await publish(hub_end, proxy, challenges={TOKEN: ANSWER}, redirect=("web.test",))
    raw = await raw_request(proxy.ports[0], get("WEB.test.:8080", "/a%2Fb?c=d%20e"))
    head = raw.partition(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 308")
    assert "Location: https://web.test/a%2Fb?c=d%20e" in head
    raw = await raw_request(proxy.ports[0], get("web.test", f"/.well-known/acme-challenge/{TOKEN}"))
    assert raw.startswith(b"HTTP/1.1 200")
    raw = await raw_request(proxy.ports[0], get("api.test", "/"))
    assert raw.startswith(b"HTTP/1.1 ") and not raw.startswith(b"HTTP/1.1 308")


@pytest.mark.parametrize("challenges", [
    {"../etc": "x.y"}, {TOKEN: "no-dot"}, {TOKEN: "other.answer"}, {TOKEN: 7},
    {"a" * 300: "a" * 300 + ".b"}, {TOKEN: ANSWER + "\r\nX-Injected: 1"}, ["not", "a", "map"],
])
def test_a_tls_message_with_a_token_that_is_not_base64url_is_refused(
        challenges: object) -> None:
    import json
    with pytest.raises(InvalidInput):
        parse_message(json.dumps({"type": "tls", "version": 1, "challenges": challenges}))
