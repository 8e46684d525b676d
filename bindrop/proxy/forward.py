"""The request handler: route, forward, stream back. Header rules live in ``headers``.

Bodies are streamed both ways, chunk by chunk as they arrive (no buffering), so uploads,
server-sent events and long polls pass through at once. The upstream client follows no
redirect, keeps no cookies, decompresses nothing, adds no header of its own and sends the
path exactly as the client did. Each forwarded request counts as in flight to its upstream
unit from before it connects until its last byte is sent back (what a drain waits for).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from bindrop.client.protocol import AppRoute, Upstream
from bindrop.proxy.accesslog import AccessLog, AccessRecord
from bindrop.proxy.cache import RouteCache
from bindrop.proxy.headers import (
    build_downstream_headers,
    build_https_location,
    build_upstream_headers,
    is_websocket_upgrade,
    pick_request_id,
    response_has_body,
    without_hop_by_hop,
)
from bindrop.proxy.inflight import InFlight
from bindrop.proxy.pages import Pages
from bindrop.proxy.table import match_route
from bindrop.proxy.upstream import (
    StaleConnection,
    UpstreamConnection,
    UpstreamError,
    UpstreamPool,
    frame_chunk,
    render_request_head,
)

# Sent by aiohttp's websocket client itself; the rest of the client's headers go upstream.
_WS_OWN_HEADERS = ("Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions",
                   "Sec-WebSocket-Protocol")
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


#: Asks the hub to start an app (bounded by the timeout given); None, or why it did not.
Waker = Callable[[str, float], Awaitable[str | None]]


class BodyTooLarge(Exception):
    pass


@dataclass
class _Result:
    status: int = 0
    sent: int = 0
    app: str | None = None
    release: str | None = None
    too_large: bool = False  # the upload passed the app's body limit while streaming


def describe_unavailable(route: AppRoute) -> str:
    """Why an app's requests get 503, for the visitor. Pure."""
    if route.maintenance_message:
        return route.maintenance_message
    if route.status == "crash-looping":
        return f"{route.app} is not running: it keeps crashing. Try again later."
    if route.status in ("restarting", "starting"):
        return f"{route.app} is starting. Try again in a moment."
    return f"{route.app} is not running at the moment. Try again later."


def upstream_url(upstream: Upstream, raw_path: str) -> URL:
    """The upstream URL for a request line's raw path, kept byte for byte. Pure."""
    path, _, query = raw_path.partition("?")
    return URL.build(scheme="http", host="127.0.0.1", port=upstream.port, path=path,
                     query_string=query, encoded=True)


class Forwarder:
    """Answers every request the proxy receives."""

    def __init__(self, routes: RouteCache, pool: UpstreamPool, *,
                 inflight: InFlight, pages: Pages, access: AccessLog,
                 upstream_timeout: float, scheme: str = "http", waker: Waker | None = None,
                 wake_timeout: float = 30.0, https_port: int | None = None) -> None:
        self.routes = routes
        self.pool = pool
        self._ws_session: aiohttp.ClientSession | None = None
        self.inflight = inflight
        self.pages = pages
        self.access = access
        self.upstream_timeout = upstream_timeout
        self.scheme = scheme
        self.waker = waker
        self.wake_timeout = wake_timeout
        #: The port of this proxy's HTTPS listener (redirects point there); None: no HTTPS.
        self.https_port = https_port
        #: Apps that had a request since ``take_activity`` was last called.
        self._active: set[str] = set()
        self._busy: Counter[str] = Counter()

    def websocket_session(self) -> aiohttp.ClientSession:
        """aiohttp's client, for WebSocket upgrades only (made on first use)."""
        if self._ws_session is None:
            self._ws_session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(),  # never one visitor's cookies for another
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                timeout=aiohttp.ClientTimeout(total=None,
                                              sock_connect=self.pool.connect_timeout),
                trust_env=False, requote_redirect_url=False)
        return self._ws_session

    async def close(self) -> None:
        """Close the pooled connections to the apps and the WebSocket client."""
        self.pool.close()
        session, self._ws_session = self._ws_session, None
        if session is not None:
            await session.close()

    def take_activity(self) -> set[str]:
        """Apps with a request since the last call, or one still in flight."""
        active, self._active = self._active, set()
        return active | set(self._busy)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.monotonic()
        request_id = pick_request_id(request.headers, os.urandom(16).hex())
        host = request.headers.get("Host", "")
        result = _Result()
        try:
            return await self._answer(request, host, request_id, result)
        finally:
            self.access.write(AccessRecord(
                request.method, host, request.raw_path[:2048], result.status, result.sent,
                (time.monotonic() - started) * 1000, result.app, result.release, request_id))

    async def _answer(self, request: web.BaseRequest, host: str, request_id: str,
                      result: _Result) -> web.StreamResponse:
        route = match_route(self.routes.lookup, host, request.raw_path)
        if route is None:
            return self._page(request, result, 404, f"No app answers on {host or 'this address'}"
                              " here. Check the address, or add the host to an app.", request_id)
        result.app = route.app
        if route.https_redirect and not request.secure:
            return self._redirect(request, result, host, request_id)
        if route.wakeable and self.waker is not None:
            route, problem = await self._wake(route, host, request.raw_path)
            if problem is not None:
                return self._page(request, result, 503, problem, request_id, route.app)
        if not route.serving and route.hold:
            route = await self._wait_for_route(route, host, request.raw_path)
        if not route.serving or route.upstream is None:
            return self._page(request, result, 503, describe_unavailable(route), request_id,
                              route.app)
        upstream = route.upstream
        result.release = upstream.release
        length = request.content_length
        if length is not None and length > route.body_limit:
            return self._page(request, result, 413, f"The request body is larger than "
                              f"{route.app} accepts ({route.body_limit} bytes).", request_id,
                              route.app)
        self.inflight.enter(upstream.unit)
        self._busy[route.app] += 1
        try:
            if is_websocket_upgrade(request.headers):
                return await self._websocket(request, route, upstream, request_id, result)
            return await self._forward(request, route, upstream, request_id, result)
        finally:
            self.inflight.leave(upstream.unit)
            self._active.add(route.app)
            self._busy[route.app] -= 1
            if not self._busy[route.app]:
                del self._busy[route.app]

    def _scheme(self, request: web.BaseRequest) -> str:
        return "https" if request.secure else self.scheme

    async def _wake(self, route: AppRoute, host: str, raw_path: str
                    ) -> tuple[AppRoute, str | None]:
        """Have the hub start an on-demand app; the route to use then, or why not."""
        assert self.waker is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wake_timeout
        problem = await self.waker(route.app, self.wake_timeout)
        if problem is not None:
            return route, f"{route.app} could not be started: {problem}"
        # The hub answers once this proxy confirmed the new table, unless it was slow to.
        while True:
            found = match_route(self.routes.lookup, host, raw_path)
            if found is None or found.serving or loop.time() >= deadline:
                return found or route, None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.routes.swapped(), deadline - loop.time())

    async def _wait_for_route(self, route: AppRoute, host: str, raw_path: str) -> AppRoute:
        """Hold a request while a no-overlap deploy swaps releases (bounded by the wake
        timeout): the route to use then, serving or not."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wake_timeout
        while True:
            found = match_route(self.routes.lookup, host, raw_path)
            if found is None or found.serving or not found.hold or loop.time() >= deadline:
                return found or route
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.routes.swapped(), deadline - loop.time())

    async def _forward(self, request: web.BaseRequest, route: AppRoute, upstream: Upstream,
                       request_id: str, result: _Result) -> web.StreamResponse:
        headers = build_upstream_headers(request.headers, client=request.remote,
                                         scheme=self._scheme(request), request_id=request_id)
        if "Host" not in headers:  # HTTP/1.0 visitors may send none; HTTP/1.1 needs one
            headers["Host"] = f"127.0.0.1:{upstream.port}"
        has_body = request.body_exists
        chunked = has_body and request.content_length is None
        head = render_request_head(request.method, request.raw_path, headers.items(),
                                   chunked=chunked)
        attempts = 1 if has_body or request.method not in _IDEMPOTENT else 2
        conn: UpstreamConnection | None = None
        upload: asyncio.Task[None] | None = None
        try:
            for attempt in range(attempts):
                try:
                    conn = await self.pool.acquire(upstream.port, fresh=attempt > 0)
                except (OSError, TimeoutError):
                    return self._page(request, result, 502, f"{route.app} did not accept the "
                                      "connection. It may be starting or stopping; try "
                                      "again.", request_id, route.app)
                conn.send_head(head, head_only=request.method == "HEAD")
                if has_body:
                    upload = asyncio.ensure_future(
                        _upload(request, conn, route.body_limit, result, chunked))
                try:
                    async with asyncio.timeout(self.upstream_timeout):
                        await _wait_head(conn, upload)
                    break
                except TimeoutError:
                    return self._page(request, result, 504, f"{route.app} did not answer "
                                      f"within {self.upstream_timeout:g} s.", request_id,
                                      route.app)
                except BodyTooLarge:
                    return self._page(request, result, 413, f"The request body is larger "
                                      f"than {route.app} accepts ({route.body_limit} bytes).",
                                      request_id, route.app)
                except StaleConnection:
                    # A pooled keep-alive connection the app had just closed: retry once
                    # (only requests without a body that are safe to repeat).
                    conn.close()
                    if attempt + 1 < attempts:
                        continue
                    return self._page(request, result, 502, f"{route.app} closed the "
                                      "connection without answering.", request_id, route.app)
                except UpstreamError:
                    return self._page(request, result, 502, f"{route.app} closed the "
                                      "connection without answering.", request_id, route.app)
            assert conn is not None
            answer = web.StreamResponse(status=conn.status, reason=conn.reason,
                                        headers=build_downstream_headers(
                                            decode_headers(conn.headers), request_id))
            result.status = conn.status
            await answer.prepare(request)
            if response_has_body(request.method, conn.status):
                while chunk := await conn.read():
                    result.sent += len(chunk)
                    if conn.complete and not conn.pending:
                        break  # the last piece: it goes with the end below
                    await answer.write(chunk)
                    chunk = b""
                await answer.write_eof(chunk)
            else:
                await answer.write_eof()
            return answer
        finally:
            if upload is not None:
                if not upload.done():
                    upload.cancel()  # the app answered before it read the whole upload
                    if conn is not None:
                        conn.close()
                elif not upload.cancelled():
                    upload.exception()  # seen (or beside the point once the app answered)
            if conn is not None:
                conn.release()

    async def _websocket(self, request: web.BaseRequest, route: AppRoute, upstream: Upstream,
                         request_id: str, result: _Result) -> web.StreamResponse:
        headers = build_upstream_headers(without_hop_by_hop(request.headers,
                                                            also=_WS_OWN_HEADERS),
                                         client=request.remote,
                                         scheme=self._scheme(request),
                                         request_id=request_id)
        protocols = [p.strip() for v in request.headers.getall("Sec-WebSocket-Protocol", ())
                     for p in v.split(",") if p.strip()]
        url = upstream_url(upstream, request.raw_path)
        try:
            async with asyncio.timeout(self.upstream_timeout):
                up = await self.websocket_session().ws_connect(
                    url, headers=headers, protocols=protocols, autoclose=False,
                    autoping=False, max_msg_size=0)
        except TimeoutError:
            return self._page(request, result, 504, f"{route.app} did not answer within "
                              f"{self.upstream_timeout:g} s.", request_id, route.app)
        except aiohttp.WSServerHandshakeError as exc:
            return self._page(request, result, exc.status if exc.status >= 400 else 502,
                              f"{route.app} refused the WebSocket: {exc.message}",
                              request_id, route.app)
        except aiohttp.ClientError:
            return self._page(request, result, 502, f"{route.app} did not accept the "
                              "connection.", request_id, route.app)
        down = web.WebSocketResponse(protocols=(up.protocol,) if up.protocol else (),
                                     autoclose=False, autoping=False, max_msg_size=0)
        await down.prepare(request)
        result.status = 101
        try:
            await _pump_both(down, up)
        finally:
            await up.close()
            await down.close()
        return down

    def _redirect(self, request: web.BaseRequest, result: _Result, host: str,
                  request_id: str) -> web.Response:
        location = build_https_location(host, request.raw_path, self.https_port or 443)
        result.status = 308
        return web.Response(status=308, headers={
            "Location": location, "Cache-Control": "no-store", "X-Request-Id": request_id})

    def _page(self, request: web.BaseRequest, result: _Result, status: int, message: str,
              request_id: str, app: str | None = None) -> web.Response:
        page = self.pages.render(status, message, accept=request.headers.get("Accept", ""),
                                 app=app, request_id=request_id)
        result.status, result.sent = status, len(page.body)
        return web.Response(status=status, body=page.body,
                            headers={"Content-Type": page.content_type,
                                     "Cache-Control": "no-store", "X-Request-Id": request_id})


async def _upload(request: web.BaseRequest, conn: UpstreamConnection, limit: int,
                  result: _Result, chunked: bool) -> None:
    """Send the request body to the app as it arrives; BodyTooLarge past ``limit``."""
    received = 0
    async for data in request.content.iter_any():
        received += len(data)
        if received > limit:
            result.too_large = True
            raise BodyTooLarge
        await conn.send_body(frame_chunk(data) if chunked else data)
    if chunked:
        await conn.send_body(frame_chunk(b""))


async def _wait_head(conn: UpstreamConnection, upload: asyncio.Task[None] | None) -> None:
    """Until the app's answer has its headers; an upload's error (BodyTooLarge, the
    visitor going away) ends the wait with that error."""
    if upload is None:
        await conn.head()
        return
    head = asyncio.ensure_future(conn.head())
    try:
        await asyncio.wait((head, upload), return_when=asyncio.FIRST_COMPLETED)
        if upload.done() and upload.exception() is not None:
            raise upload.exception()  # type: ignore[misc]
        await head
    finally:
        if not head.done():
            head.cancel()
        elif not head.cancelled():
            head.exception()  # retrieved: the upload's error is the one that counts


def decode_headers(raw: list[tuple[bytes, bytes]]) -> CIMultiDict[str]:
    """An app's response headers as parsed (bytes) for aiohttp to send on, decoded the way
    aiohttp decodes them. Pure."""
    return CIMultiDict((name.decode("utf-8", "surrogateescape"),
                        value.decode("utf-8", "surrogateescape")) for name, value in raw)


async def _pump_both(down: web.WebSocketResponse, up: aiohttp.ClientWebSocketResponse) -> None:
    """Copy frames both ways until either side closes; then close the other."""

    async def to_upstream() -> None:
        async for msg in down:
            if not await _relay(msg, up):
                break
        await up.close()

    async def to_client() -> None:
        async for msg in up:
            if not await _relay(msg, down):
                break
        await down.close()

    tasks = [asyncio.ensure_future(to_upstream()), asyncio.ensure_future(to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, aiohttp.ClientError):
                await task


async def _relay(msg: aiohttp.WSMessage,
                 to: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> bool:
    """Send one frame on; False when the conversation is over."""
    if msg.type == aiohttp.WSMsgType.TEXT:
        await to.send_str(msg.data)
    elif msg.type == aiohttp.WSMsgType.BINARY:
        await to.send_bytes(msg.data)
    elif msg.type == aiohttp.WSMsgType.PING:
        await to.ping(msg.data)
    elif msg.type == aiohttp.WSMsgType.PONG:
        await to.pong(msg.data)
    else:  # CLOSE, CLOSING, CLOSED, ERROR
        return False
    return True
