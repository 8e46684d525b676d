"""The proxy forwarding real requests to real backends, routed by the hub's table."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import time

import aiohttp
from multidict import CIMultiDictProxy

from bindrop.proxy.server import ProxyServer

from .kit import Backend, HubEnd, json_body, raw_request, seen_headers


def url(proxy: ProxyServer, path: str = "/") -> str:
    return f"http://127.0.0.1:{proxy.ports[0]}{path}"


async def get(proxy: ProxyServer, host: str, path: str = "/",
              **kwargs: object) -> tuple[int, str, CIMultiDictProxy[str]]:
    async with aiohttp.ClientSession() as session, session.get(
            url(proxy, path), headers={"Host": host, **kwargs.pop("headers", {})},  # type: ignore[dict-item]
            allow_redirects=False, **kwargs) as response:  # type: ignore[arg-type]
        return response.status, await response.text(), response.headers


async def test_requests_are_routed_by_host(proxy: ProxyServer, backend: Backend) -> None:
    status, body, _ = await get(proxy, "web.test", "/hello")
    assert status == 200
    assert json.loads(body)["label"] == "web" and json.loads(body)["raw_path"] == "/hello"


async def test_the_longest_path_prefix_of_a_host_wins(proxy: ProxyServer, hub_end: HubEnd
                                                       ) -> None:
    other = await Backend("api").start()
    try:
        await hub_end.publish("api", other.port)
        for path, label in (("/api/v1/things", "api"), ("/api", "api"), ("/apix", "web"),
                            ("/", "web")):
            status, body, _ = await get(proxy, "web.test", path)
            assert (status, json.loads(body)["label"]) == (200, label), path
    finally:
        await other.stop()


async def test_an_unknown_host_gets_a_404_page_or_json_when_asked(proxy: ProxyServer) -> None:
    status, body, headers = await get(proxy, "nobody.test")
    assert status == 404 and "text/html" in headers["Content-Type"]
    assert "No app answers on nobody.test" in body
    status, body, headers = await get(proxy, "nobody.test",
                                      headers={"Accept": "application/json"})
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"


async def test_a_stopped_app_gets_503_with_its_maintenance_message(proxy: ProxyServer) -> None:
    status, body, _ = await get(proxy, "down.test")
    assert status == 503 and "Back at noon: we are moving house." in body


async def test_an_upstream_that_refuses_gets_502(proxy: ProxyServer, hub_end: HubEnd) -> None:
    gone = await Backend("gone").start()
    port = gone.port
    await gone.stop()
    await hub_end.publish("web", port, release="2")
    status, body, _ = await get(proxy, "web.test")
    assert status == 502 and "did not accept the connection" in body


async def test_an_upstream_that_does_not_answer_in_time_gets_504(proxy: ProxyServer) -> None:
    started = time.monotonic()
    status, body, _ = await get(proxy, "web.test", "/slow")
    assert status == 504 and "did not answer within 1 s" in body
    assert time.monotonic() - started < 4


async def test_a_trickling_response_arrives_in_pieces(proxy: ProxyServer) -> None:
    arrivals = []
    async with aiohttp.ClientSession() as session, session.get(
            url(proxy, "/trickle"), headers={"Host": "web.test"}) as response:
        async for chunk in response.content.iter_any():
            arrivals.append((time.monotonic(), chunk))
    assert b"".join(c for _, c in arrivals) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert len(arrivals) >= 3
    assert arrivals[-1][0] - arrivals[0][0] > 0.4  # not buffered and sent at the end


async def test_an_upload_reaches_the_app_while_it_is_still_being_sent(
        proxy: ProxyServer, backend: Backend) -> None:
    async def body() -> object:
        yield b"first part;"
        # A proxy that buffered the upload would hold this chunk until the end: a deadlock.
        await asyncio.wait_for(backend.first_chunk.wait(), 5)
        yield b"second part"

    async with aiohttp.ClientSession() as session, session.post(
            url(proxy, "/upload"), headers={"Host": "web.test"}, data=body()) as response:
        assert response.status == 200
        assert await response.json() == {"received": 22}


async def test_a_websocket_echo_passes_through(proxy: ProxyServer) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(
            url(proxy, "/ws"), headers={"Host": "web.test"}) as ws:
        await ws.send_str("ping one")
        assert (await ws.receive(timeout=5)).data == "web echo: ping one"
        await ws.send_str("ping two")
        assert (await ws.receive(timeout=5)).data == "web echo: ping two"


async def test_a_body_over_the_app_limit_gets_413(proxy: ProxyServer, hub_end: HubEnd,
                                                  backend: Backend) -> None:
    await hub_end.publish("small", backend.port)
    async with aiohttp.ClientSession() as session:
        async with session.post(url(proxy, "/upload"), headers={"Host": "small.test"},
                                data=b"x" * 1001) as response:
            assert response.status == 413
        async with session.post(url(proxy, "/upload"), headers={"Host": "small.test"},
                                data=b"x" * 1000) as response:
            assert response.status == 200

        async def chunked() -> object:
            for _ in range(3):
                yield b"y" * 600

        async with session.post(url(proxy, "/upload"), headers={"Host": "small.test"},
                                data=chunked()) as response:
            assert response.status == 413


async def test_a_header_over_the_size_limit_is_refused(proxy: ProxyServer) -> None:
    raw = await raw_request(proxy.ports[0], b"GET / HTTP/1.1\r\nHost: web.test\r\nX-Big: "
                            + b"a" * 20000 + b"\r\nConnection: close\r\n\r\n")
    assert raw.split(b" ", 2)[1] in (b"400", b"431")


async def test_redirects_are_passed_back_not_followed(proxy: ProxyServer) -> None:
    status, _, headers = await get(proxy, "web.test", "/redirect")
    assert status == 302 and headers["Location"] == "/elsewhere"


async def test_cookies_of_one_visitor_are_not_sent_for_another(proxy: ProxyServer) -> None:
    status, _, headers = await get(proxy, "web.test", "/set-cookie")
    assert status == 200 and "visitor-one" in headers["Set-Cookie"]
    _, body, _ = await get(proxy, "web.test", "/who")
    assert "cookie" not in seen_headers(json.loads(body))


async def test_compressed_bodies_pass_through_untouched(proxy: ProxyServer) -> None:
    raw = await raw_request(proxy.ports[0], b"GET /gzip HTTP/1.1\r\nHost: web.test\r\n"
                            b"Accept-Encoding: gzip\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-encoding: gzip" in head.lower()
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    assert gzip.decompress(body) == b"squeezed" * 100


async def test_the_upstream_request_has_no_headers_the_client_did_not_send(
        proxy: ProxyServer) -> None:
    raw = await raw_request(proxy.ports[0], b"GET /bare HTTP/1.1\r\nHost: web.test\r\n"
                            b"Connection: close\r\n\r\n")
    names = set(seen_headers(json_body(dechunk_response(raw))))
    assert names == {"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                     "forwarded", "x-real-ip", "x-request-id"}


async def test_the_raw_path_is_passed_as_sent(proxy: ProxyServer) -> None:
    path = b"/a/../b%2Fc/./d%zz//e;f?q=%20x&&y=1&z=/../"
    raw = await raw_request(proxy.ports[0], b"GET " + path + b" HTTP/1.1\r\nHost: web.test\r\n"
                            b"Connection: close\r\n\r\n")
    assert json_body(dechunk_response(raw))["raw_path"] == path.decode()


async def test_forwarded_headers_are_set_and_hop_by_hop_ones_dropped(
        proxy: ProxyServer) -> None:
    raw = await raw_request(proxy.ports[0], b"GET / HTTP/1.1\r\nHost: web.test:8080\r\n"
                            b"X-Forwarded-For: 10.0.0.1\r\nX-Request-Id: abc-123\r\n"
                            b"Connection: close, X-Private\r\nX-Private: secret\r\n"
                            b"Keep-Alive: timeout=5\r\nTE: trailers\r\n\r\n")
    seen = seen_headers(json_body(dechunk_response(raw)))
    assert seen["x-forwarded-for"] == "127.0.0.1"  # set at the edge, not appended
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == "web.test:8080"
    assert seen["x-request-id"] == "abc-123"
    assert not {"x-private", "keep-alive", "te"} & set(seen)
    assert b"x-request-id: abc-123" in raw.lower()


async def test_each_request_is_logged_as_one_json_line(proxy: ProxyServer,
                                                       access_log: io.StringIO) -> None:
    await get(proxy, "web.test", "/logged")
    await get(proxy, "nobody.test", "/lost")
    lines = [json.loads(line) for line in access_log.getvalue().splitlines()]
    logged = next(r for r in lines if r["path"] == "/logged")
    assert logged["host"] == "web.test" and logged["status"] == 200
    assert logged["app"] == "web" and logged["release"] == "1" and logged["bytes"] > 0
    assert logged["duration_ms"] >= 0
    lost = next(r for r in lines if r["path"] == "/lost")
    assert (lost["status"], lost["app"]) == (404, None)


def dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


def dechunk_response(raw: bytes) -> bytes:
    head, _, body = raw.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    return head + b"\r\n\r\n" + body

