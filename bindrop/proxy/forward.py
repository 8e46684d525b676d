"""The request handler: route, forward, stream back. Header rules live in ``headers``.

Bodies are streamed both ways, chunk by chunk as they arrive (no buffering), so uploads,
server-sent events and long polls pass through at once. The upstream client follows no
redirect, keeps no cookies, decompresses nothing, adds no header of its own and sends the
path exactly as the client did. An upgrade the app accepts (``101``, WebSocket) becomes a
byte tunnel. Each forwarded request counts as in flight to its upstream unit from before it
connects until its last byte is sent back (what a drain waits for).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bindrop.client.proxywire import AppRoute, Upstream
from bindrop.proxy.accesslog import AccessLog, AccessRecord
from bindrop.proxy.balance import pick_upstream
from bindrop.proxy.cache import RouteCache
from bindrop.proxy.counters import Counters
from bindrop.proxy.headers import (
    build_downstream_headers,
    build_https_location,
    build_interim_headers,
    build_upstream_headers,
    get_header,
    is_websocket_upgrade,
    pick_client,
    pick_request_id,
    response_has_body,
)
from bindrop.proxy.http1 import BadBody, Request, Response, UploadTimeout
from bindrop.proxy.inflight import InFlight
from bindrop.proxy.limits import Limits, log_fired
from bindrop.proxy.pages import Pages
from bindrop.proxy.table import match_route
from bindrop.proxy.trusted import TrustedProxies
from bindrop.proxy.upstream import (
    StaleConnection,
    UpstreamConnection,
    UpstreamError,
    UpstreamPool,
    UpstreamTimeout,
    frame_chunk,
    render_request_head,
)

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


#: Asks the hub to start an app (bounded by the timeout given); None, or why it did not.
Waker = Callable[[str, float], Awaitable[str | None]]


class BodyTooLarge(Exception):
    pass


@dataclass
class _Result:
    status: int = 0
    sent: int = 0
    received: int = 0  # request body bytes sent on to the app
    app: str | None = None
    release: str | None = None


class _Exchange:
    """The connection to the app a request is on and the task sending its body; ``end``
    gives the connection back to the pool (or closes it), whatever happened."""

    __slots__ = ("conn", "upload")

    def __init__(self) -> None:
        self.conn: UpstreamConnection | None = None
        self.upload: asyncio.Task[None] | None = None

    def end(self, upgrade: bool) -> None:
        conn, upload = self.conn, self.upload
        if upload is not None:
            if not upload.done():
                upload.cancel()  # the app answered before it read the whole upload
                if conn is not None:
                    conn.close()
            elif not upload.cancelled():
                upload.exception()  # seen (or beside the point once the app answered)
        if conn is not None:
            if upgrade:
                conn.close()
            else:
                conn.release()


class _Refused(Exception):
    """The instance refused (or reset, or never took) the connection before anything was
    sent, or (a request safe to repeat, without a body) closed it before any byte of an
    answer: try another one. ``timed_out``: its connect timed out (tried once more at most:
    an overloaded app should not hold a request for a connect timeout per instance)."""

    def __init__(self, timed_out: bool = False) -> None:
        super().__init__()
        self.timed_out = timed_out


def describe_unavailable(route: AppRoute) -> str:
    """Why an app's requests get 503, for the visitor. Pure."""
    if route.maintenance_message:
        return route.maintenance_message
    if route.status == "crash-looping":
        return f"{route.app} is not running: it keeps crashing. Try again later."
    if route.status == "running" and route.upstream is None:
        return (f"{route.app} runs no web process at the moment (it is scaled to 0). "
                "Try again later.")
    if route.status in ("restarting", "starting"):
        return f"{route.app} is starting. Try again in a moment."
    return f"{route.app} is not running at the moment. Try again later."


class Forwarder:
    """Answers every request the proxy receives."""

    def __init__(self, routes: RouteCache, pool: UpstreamPool, *,
                 inflight: InFlight, pages: Pages, access: AccessLog,
                 upstream_timeout: float, scheme: str = "http", waker: Waker | None = None,
                 wake_timeout: float = 30.0, https_port: int | None = None,
                 limits: Limits | None = None,
                 trusted_proxies: TrustedProxies | None = None,
                 counters: Counters | None = None) -> None:
        self.routes = routes
        self.limits = limits or Limits()
        #: Peers whose forwarding headers are kept (a load balancer, a CDN); none by default.
        self.trusted = trusted_proxies or TrustedProxies()
        self.pool = pool
        self.inflight = inflight
        self.pages = pages
        self.access = access
        self.upstream_timeout = upstream_timeout
        self.scheme = scheme
        self.waker = waker
        self.wake_timeout = wake_timeout
        #: The port of this proxy's HTTPS listener (redirects point there); None: no HTTPS.
        self.https_port = https_port
        #: Traffic per app and release, reported to the hub (``bindrop.proxy.counters``);
        #: None counts nothing.
        self.counters = counters
        #: Apps that had a request since ``take_activity`` was last called.
        self._active: set[str] = set()
        self._busy: dict[str, int] = {}  # requests in flight per app
        # New request ids: random per process, then counted (unique across workers and
        # restarts without a getrandom call per request).
        self._id_prefix = os.urandom(8).hex()
        self._ids = itertools.count()
        self._turn = 0

    def close(self) -> None:
        """Close the pooled connections to the apps."""
        self.pool.close()

    def take_activity(self) -> set[str]:
        """Apps with a request since the last call, or one still in flight."""
        active, self._active = self._active, set()
        return active | set(self._busy)

    async def handle(self, request: Request, response: Response) -> None:
        started = time.monotonic()
        request_id = pick_request_id(get_header(request.headers, b"x-request-id"),
                                     f"{self._id_prefix}{next(self._ids):08x}")
        host = request.host
        result = _Result()
        try:
            await self._answer(request, response, host, request_id, result)
        finally:
            elapsed = time.monotonic() - started
            if self.counters is not None:
                self.counters.count(result.app, result.release, result.status,
                                    result.received, result.sent, elapsed)
            self.access.write(AccessRecord(
                request.method, host, request.raw_path[:2048], result.status, result.sent,
                elapsed * 1000, result.app, result.release, request_id))

    async def _answer(self, request: Request, response: Response, host: str,
                      request_id: str, result: _Result) -> None:
        """Route the request (the app for its host and path), redirect it to HTTPS, wake an
        on-demand app or hold it through a release swap, as its route says; then forward it
        to the app (``_balance``, ``_forward``), or answer with an error page (``_page``)."""
        route = match_route(self.routes.lookup, host, request.raw_path)
        if route is None:
            return await self._page(request, response, result, 404, f"No app answers on "
                                    f"{host or 'this address'} here. Check the address, or "
                                    "add the host to an app.", request_id)
        result.app = route.app
        if route.https_redirect and not request.secure:
            return await self._redirect(request, response, result, host, request_id)
        if route.wakeable and self.waker is not None:
            route, problem = await self._wake(route, host, request.raw_path)
            if problem is not None:
                return await self._page(request, response, result, 503, problem, request_id,
                                        route.app)
        if not route.serving and route.hold:
            route = await self._wait_for_route(route, host, request.raw_path)
        if not route.serving or route.upstream is None:
            return await self._page(request, response, result, 503,
                                    describe_unavailable(route), request_id, route.app)
        length = request.content_length
        if length is not None and length > route.body_limit:
            return await self._too_large(request, response, result, route, request_id)
        await self._balance(request, response, route, request_id, result)

    async def _balance(self, request: Request, response: Response, route: AppRoute,
                       request_id: str, result: _Result) -> None:
        """Forward to one of the route's instances (the least busy), and to another one if
        it refused the request before anything was sent."""
        busy = self._busy
        busy[route.app] = busy.get(route.app, 0) + 1
        refused: set[str] = set()
        timed_out = False
        upstream: Upstream | None = self._pick(route, refused)
        try:
            while upstream is not None:
                unit = upstream.unit
                result.release = upstream.release
                self.inflight.enter(unit)
                try:
                    await self._forward(request, response, route, upstream, request_id,
                                        result, retry_refused=len(route.upstreams) > 1
                                        and not timed_out)
                    break
                except _Refused as exc:
                    # Nothing was sent: another instance may take the request.
                    timed_out = timed_out or exc.timed_out
                    refused.add(unit)
                    upstream = self._pick(route, refused)
                    if upstream is None:
                        await self._not_accepted(request, response, result, route, request_id)
                finally:
                    self.inflight.leave(unit)
        finally:
            self._active.add(route.app)
            busy[route.app] -= 1
            if not busy[route.app]:
                del busy[route.app]

    def _pick(self, route: AppRoute, refused: set[str]) -> Upstream | None:
        upstreams = route.upstreams
        if len(upstreams) == 1:
            return None if refused else upstreams[0]
        self._turn += 1
        return pick_upstream(upstreams, self.inflight.live(), turn=self._turn, exclude=refused)

    def _scheme(self, request: Request) -> str:
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

    async def _forward(self, request: Request, response: Response, route: AppRoute,
                       upstream: Upstream, request_id: str, result: _Result, *,
                       retry_refused: bool = False) -> None:
        """Forward to ``upstream``. With ``retry_refused`` (the app has other instances), a
        refused connect, or a request safe to repeat whose connection closed before any byte
        of an answer, raises ``_Refused`` so the caller tries another instance."""
        upgrade = request.upgrade and is_websocket_upgrade(request.headers)
        head = self._upstream_head(request, upstream, request_id, upgrade)
        exchange = _Exchange()
        try:
            if await self._send(request, response, route, upstream, head, request_id, result,
                                exchange, upgrade=upgrade, retry_refused=retry_refused):
                assert exchange.conn is not None
                await self._relay(request, response, route, exchange.conn, request_id, result,
                                  upgrade=upgrade)
        finally:
            exchange.end(upgrade)

    def _upstream_head(self, request: Request, upstream: Upstream, request_id: str,
                       upgrade: bool) -> bytes:
        """The request head as the app gets it (``headers`` says which headers pass)."""
        trusted = self.trusted.peer_is_trusted(request.remote)
        headers = build_upstream_headers(
            request.headers, client=request.remote, scheme=self._scheme(request),
            request_id=request_id, trusted=trusted,
            visitor=pick_client(request.remote, request.headers, self.trusted.peer_is_trusted)
            if trusted else None,
            host=request.host.encode("utf-8", "surrogateescape") if request.host else None)
        if not request.host:  # HTTP/1.0 visitors may send none; HTTP/1.1 needs one
            headers.append((b"Host", b"127.0.0.1:%d" % upstream.port))
        if upgrade:  # hop-by-hop, but the one hop the app must see to agree
            headers.append((b"Connection", b"Upgrade"))
            headers.append((b"Upgrade", get_header(request.headers, b"upgrade") or b""))
        return render_request_head(request.method, request.raw_url, headers,
                                   chunked=request.chunked, length=request.content_length)

    async def _send(self, request: Request, response: Response, route: AppRoute,
                    upstream: Upstream, head: bytes, request_id: str, result: _Result,
                    exchange: _Exchange, *, upgrade: bool, retry_refused: bool) -> bool:
        """Connect (or take a pooled connection), send the request, and wait for the head of
        the app's answer: True then, with ``exchange.conn`` holding it; False when the
        visitor got an error page instead. A pooled connection the app had just closed is
        retried once (only requests without a body that are safe to repeat)."""
        has_body = request.body_exists
        attempts = 1 if has_body or upgrade or request.method not in _IDEMPOTENT else 2
        for attempt in range(attempts):
            try:
                conn = exchange.conn = (None if attempt or upgrade
                                        else self.pool.take_idle(upstream.port))
                if conn is None:
                    conn = exchange.conn = await self.pool.connect(upstream.port)
            except OSError as exc:  # refused, reset before the loop saw it, timed out
                # Nothing was sent: another instance may take any request (nginx's default
                # proxy_next_upstream "error timeout" does the same).
                if retry_refused:
                    raise _Refused(isinstance(exc, TimeoutError)) from None
                await self._not_accepted(request, response, result, route, request_id)
                return False
            conn.send_head(head, head_only=request.method == "HEAD")
            conn.on_interim = _interim_to(response)
            upload = None
            if has_body:
                conn.send_timeout = self.limits.upload_idle_timeout
                upload = exchange.upload = asyncio.ensure_future(
                    _upload(request, conn, route.body_limit, request.chunked, result))
            try:
                if upload is None:
                    await conn.head(self.upstream_timeout)
                else:
                    await _wait_head(conn, upload, self.upstream_timeout)
                return True
            except (TimeoutError, BodyTooLarge, UploadTimeout, BadBody, UpstreamTimeout) as exc:
                await self._head_failed(request, response, result, route, request_id, exc)
                return False
            except StaleConnection:
                # A pooled keep-alive connection the app had just closed: retry once.
                conn.close()
                if attempt + 1 < attempts:
                    continue
                if retry_refused and attempts > 1:
                    raise _Refused from None
                await self._closed(request, response, result, route, request_id)
                return False
            except UpstreamError:
                # An instance that died with the request (no byte of an answer yet): a
                # request safe to repeat goes to another one, as nginx's default
                # proxy_next_upstream (error) does for idempotent methods.
                if retry_refused and attempts > 1:
                    conn.close()
                    raise _Refused from None
                await self._closed(request, response, result, route, request_id)
                return False
        return False  # not reached: the last attempt returns or raises

    async def _relay(self, request: Request, response: Response, route: AppRoute,
                     conn: UpstreamConnection, request_id: str, result: _Result, *,
                     upgrade: bool) -> None:
        """The app's answer back to the visitor: its head, then its body as it comes (or a
        byte tunnel, once a WebSocket upgrade is agreed)."""
        status = conn.status
        result.status = status
        if status == 101 and upgrade:
            out = build_downstream_headers(conn.headers, request_id)
            out.append((b"Connection", b"Upgrade"))
            out.append((b"Upgrade", get_header(conn.headers, b"upgrade") or b"websocket"))
            response.start(101, conn.reason, out)
            await response.write(b"")
            await _tunnel(request, response, conn, self.limits.tunnel_idle_timeout)
            return
        if status == 101:  # a switch nobody asked for (or to what the proxy cannot
            status = result.status = 502  # carry): not passed on
            return await self._page(request, response, result, 502, f"{route.app} "
                                    "switched protocols unasked.", request_id, route.app)
        length = conn.length
        if status == 204 or (request.method != "HEAD" and status == 304) \
                or 100 <= status < 200:
            length = None
        out = build_downstream_headers(conn.headers, request_id, decided=True,
                                       length=length)
        response.start(status, conn.reason, out)
        if not response_has_body(request.method, status):
            await response.end()
            return
        whole = conn.take()
        if whole is not None:  # all here already (small answers): one write
            result.sent = len(whole)
            await response.end(whole)
            return
        limits = self.limits
        idle, name = limits.answer_idle_timeout, "answer_idle_timeout"
        if (get_header(conn.headers, b"content-type") or b"").startswith(
                b"text/event-stream"):
            idle, name = limits.tunnel_idle_timeout, "tunnel_idle_timeout"
        try:
            while chunk := await conn.read(idle, name):
                result.sent += len(chunk)
                if conn.complete and not conn.pending:
                    break  # the last piece: it goes with the end below
                await response.write(chunk)
                chunk = b""
        except UpstreamTimeout as exc:
            log_fired(exc.name, exc.seconds, f"{route.app} stalled mid-answer to "
                      f"{request.method} {request.raw_path[:200]}")
            response.connection.abort()
            return
        await response.end(chunk)

    async def _head_failed(self, request: Request, response: Response, result: _Result,
                           route: AppRoute, request_id: str, exc: Exception) -> None:
        """The error page for a request whose answer never began: the app was silent, or
        the visitor's upload went wrong (too large, stalled, malformed) or was not read."""
        if isinstance(exc, TimeoutError):
            log_fired("upstream_timeout", self.upstream_timeout, f"{route.app} sent "
                      f"no answer head to {request.method} {request.raw_path[:200]}")
            return await self._page(request, response, result, 504, f"{route.app} did "
                                    f"not answer within {self.upstream_timeout:g} s.",
                                    request_id, route.app)
        if isinstance(exc, BodyTooLarge):
            return await self._too_large(request, response, result, route, request_id)
        request.keep_alive = False  # the rest of the body is not worth reading
        if isinstance(exc, UploadTimeout):
            return await self._page(request, response, result, 408, "The request "
                                    "body stopped arriving.", request_id, route.app)
        if isinstance(exc, BadBody):
            return await self._page(request, response, result, exc.status,
                                    f"The request body is malformed ({exc.reason}).",
                                    request_id, route.app)
        assert isinstance(exc, UpstreamTimeout)
        log_fired(exc.name, exc.seconds, f"{route.app}: {exc}")
        await self._page(request, response, result, 504, f"{route.app} "
                         "stopped reading the request.", request_id, route.app)

    async def _not_accepted(self, request: Request, response: Response, result: _Result,
                            route: AppRoute, request_id: str) -> None:
        await self._page(request, response, result, 502, f"{route.app} did not accept the "
                         "connection. It may be starting or stopping; try again.", request_id,
                         route.app)

    async def _closed(self, request: Request, response: Response, result: _Result,
                      route: AppRoute, request_id: str) -> None:
        await self._page(request, response, result, 502, f"{route.app} closed the "
                         "connection without answering.", request_id, route.app)

    async def _too_large(self, request: Request, response: Response, result: _Result,
                         route: AppRoute, request_id: str) -> None:
        request.keep_alive = False  # the rest of the body is not worth reading
        await self._page(request, response, result, 413, f"The request body is larger than "
                         f"{route.app} accepts ({route.body_limit} bytes).", request_id,
                         route.app)

    async def _redirect(self, request: Request, response: Response, result: _Result,
                        host: str, request_id: str) -> None:
        location = build_https_location(host, request.raw_path, self.https_port or 443)
        result.status = 308
        await response.send(308, b"Permanent Redirect", [
            (b"Location", location.encode("utf-8", "surrogateescape")),
            (b"Cache-Control", b"no-store"), (b"X-Request-Id", request_id.encode())], b"")

    async def _page(self, request: Request, response: Response, result: _Result, status: int,
                    message: str, request_id: str, app: str | None = None) -> None:
        page = self.pages.render(status, message, accept=request.get(b"accept") or "",
                                 app=app, request_id=request_id)
        result.status, result.sent = status, len(page.body)
        await response.send(status, _REASONS.get(status, b""), [
            (b"Content-Type", page.content_type.encode()), (b"Cache-Control", b"no-store"),
            (b"X-Request-Id", request_id.encode())], page.body)


_REASONS = {404: b"Not Found", 413: b"Content Too Large", 502: b"Bad Gateway",
            503: b"Service Unavailable", 504: b"Gateway Timeout"}


def _interim_to(response: Response) -> Callable[[int, bytes, list[tuple[bytes, bytes]]],
                                                 None]:
    """Passes an app's 1xx answers on to the visitor as they come (not 100: the proxy
    answers ``Expect: 100-continue`` itself, when the body is first read)."""
    def interim(status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        if status != 100:
            response.interim(status, reason, build_interim_headers(headers))
    return interim


async def _upload(request: Request, conn: UpstreamConnection, limit: int,
                  chunked: bool, result: _Result) -> None:
    """Send the request body to the app as it arrives; BodyTooLarge past ``limit``."""
    received = 0
    while data := await request.read():
        received += len(data)
        if received > limit:
            raise BodyTooLarge
        result.received = received
        await conn.send_body(frame_chunk(data) if chunked else data)
    if chunked:
        await conn.send_body(frame_chunk(b""))


async def _wait_head(conn: UpstreamConnection, upload: asyncio.Task[None],
                     timeout: float) -> None:
    """Until the app's answer has its headers; an upload's error (BodyTooLarge, the
    visitor going away, its idle timeout) ends the wait with that error. The upload may
    take as long as it flows; ``timeout`` counts from its end (or TimeoutError)."""
    head = asyncio.ensure_future(conn.head())
    try:
        await asyncio.wait((head, upload), return_when=asyncio.FIRST_COMPLETED)
        if upload.done() and upload.exception() is not None:
            raise upload.exception()  # type: ignore[misc]
        if head.done():
            await head
            return
    finally:
        if not head.done():
            head.cancel()
        elif not head.cancelled():
            head.exception()  # retrieved: the upload's error is the one that counts
    await conn.head(timeout)  # the whole request is sent: now the app's turn


async def _tunnel(request: Request, response: Response, conn: UpstreamConnection,
                  idle: float) -> None:
    """Bytes both ways, as they are, until either side closes (then both are closed), or
    nothing passed either way for ``idle`` seconds (``tunnel_idle_timeout``)."""
    down = response.connection
    assert down.transport is not None and conn.transport is not None
    loop = asyncio.get_running_loop()
    conn.last_active = loop.time()
    up_closed = conn.start_tunnel(down.transport)
    down_closed = down.start_tunnel(conn.transport)
    try:
        while True:
            last = max(conn.last_active, down.last_active)
            wait = last + idle - loop.time()
            if wait <= 0:
                log_fired("tunnel_idle_timeout", idle, f"nothing passed through the tunnel "
                          f"of {request.method} {request.raw_path[:200]}")
                return
            done, _ = await asyncio.wait((up_closed, down_closed), timeout=wait,
                                         return_when=asyncio.FIRST_COMPLETED)
            if done:
                return
    finally:
        conn.close()
        down.close()
