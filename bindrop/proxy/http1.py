"""The proxy's HTTP/1.1 server side: an asyncio protocol with llhttp (httptools) parsing.

It replaces aiohttp's server here because, per forwarded request, aiohttp's request and
response objects cost more CPU than everything else the proxy does. One handler coroutine
per request, one at a time per connection (pipelined requests wait their turn); request
bodies are handed over as they arrive and responses written as they are given, with flow
control both ways. After a ``101 Switching Protocols`` the connection becomes a byte tunnel
to the app (WebSocket and any other upgrade).

Strict at the edge: a head llhttp reads but two parsers could read differently is refused
(``framing.parse_request_framing``), trailers never become headers, heads are bounded in size
and count in one read or many, and a refusal is answered in its turn after the requests
pipelined before it. The visitor's side timeouts (``limits``) are enforced by the server's
sweep through ``check_timeouts``; an upload's idle timeout by ``Request.read``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import cast

import httptools

from bindrop.proxy.framing import Refusal, RequestFraming, parse_request_framing
from bindrop.proxy.headers import RawHeaders, get_header
from bindrop.proxy.limits import Limits, log_fired

log = logging.getLogger(__name__)

#: Request body bytes buffered before reading from the visitor pauses.
READ_BUFFER = 256 * 1024
#: All of a request's head (request line and headers) may not be larger (the default of
#: ``Limits.max_head_size``).
MAX_HEAD_SIZE = Limits.max_head_size
_NO_FRAMING = RequestFraming()


class UploadTimeout(Exception):
    """No byte of the request body for ``upload_idle_timeout`` seconds."""


class BadBody(Exception):
    """The request body's framing broke (a bad chunk size, say) after its head was
    accepted: the answer is ``status`` and the connection closes."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Request:
    """One request as received: what the handler reads. Headers stay bytes."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_complete",
        "_conn",
        "_error",
        "_expect_continue",
        "_waiter",
        "body_exists",
        "chunked",
        "content_length",
        "headers",
        "host",
        "keep_alive",
        "method",
        "raw_path",
        "raw_url",
        "refusal",
        "remote",
        "secure",
        "upgrade",
        "version",
    )

    def __init__(self, conn: HttpConnection, method: str, raw_url: bytes,
                 headers: RawHeaders, version: str, keep_alive: bool,
                 upgrade: bool, framing: RequestFraming = _NO_FRAMING) -> None:
        self._conn = conn
        self.method = method
        if framing.target is not None:  # an absolute-form target: its path goes on
            raw_url = framing.target
        self.raw_url = raw_url
        #: The path and query as sent, decoded (bytes that are not UTF-8 as surrogates).
        self.raw_path = raw_url.decode("utf-8", "surrogateescape")
        self.headers = headers
        self.version = version
        self.keep_alive = keep_alive
        self.upgrade = upgrade
        self.remote: str | None = conn.remote
        self.secure: bool = conn.secure
        host = framing.host
        #: The host the request is for, as the framing decided it ("" without one).
        self.host = host.decode("utf-8", "surrogateescape") if host else ""
        #: The body's length by Content-Length (None: chunked, or no body).
        self.content_length = framing.content_length
        self.chunked = framing.chunked
        self.body_exists = bool(self.content_length) or framing.chunked
        #: Not to be forwarded: answer this and close.
        self.refusal: Refusal | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._complete = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._expect_continue = framing.expect_continue

    def get(self, name: bytes) -> str | None:
        """The first value of header ``name`` (lowercase), decoded; None without one."""
        value = get_header(self.headers, name)
        return None if value is None else value.decode("utf-8", "surrogateescape")

    async def read(self) -> bytes:
        """The next piece of the body as it arrived, b"" at its end. Raises
        ConnectionResetError when the visitor goes away first, UploadTimeout when no byte
        came for ``upload_idle_timeout``, BadBody when the body's framing broke."""
        if self._expect_continue:
            self._expect_continue = False
            self._conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        while not self._chunks:
            if self._complete:
                return b""
            if self._error is not None:
                raise self._error
            if self._conn.closed:
                raise ConnectionResetError("the visitor closed the connection")
            self._waiter = self._conn.loop.create_future()
            idle = self._conn.limits.upload_idle_timeout
            try:
                async with asyncio.timeout(idle):
                    await self._waiter
            except TimeoutError:
                log_fired("upload_idle_timeout", idle, f"no byte of the body of "
                          f"{self.method} {self.raw_path[:200]} from {self.remote}")
                raise UploadTimeout from None
            finally:
                self._waiter = None
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._buffered <= READ_BUFFER // 2:
            self._conn.resume_reading()
        return data

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > READ_BUFFER:
            self._conn.pause_reading()
        self._wake()

    def _end(self) -> None:
        self._complete = True
        self._wake()

    def _fail(self, error: Exception) -> None:
        self._error = error
        self.keep_alive = False
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Response:
    """What the handler answers through: ``start`` then ``write``/``end``, or ``send``."""

    __slots__ = (
        "_body_allowed",
        "_chunked",
        "_conn",
        "_head",
        "_request",
        "finished",
        "started",
        "status",
    )

    def __init__(self, conn: HttpConnection, request: Request) -> None:
        self._conn = conn
        self._request = request
        self.status = 0
        self.started = False
        self.finished = False
        self._chunked = False
        self._body_allowed = True
        self._head = b""

    def start(self, status: int, reason: bytes, headers: RawHeaders) -> None:
        """Prepare the status line and headers (sent with the first body bytes). The
        framing (Content-Length as given, else chunked, else close-delimited for HTTP/1.0)
        and ``Connection`` are this layer's; ``headers`` must hold no hop-by-hop ones except
        for a 101."""
        request = self._request
        self.status = status
        self.started = True
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        has_length = False
        for name, value in headers:
            if len(name) == 14 and name.lower() == b"content-length":
                has_length = True
            lines.append(name + b": " + value + b"\r\n")
        self._body_allowed = request.method != "HEAD" and status >= 200 \
            and status not in (204, 304)
        if status == 101:
            self._body_allowed = False
        elif self._body_allowed and not has_length:
            if request.version == "1.1":
                self._chunked = True
                lines.append(b"Transfer-Encoding: chunked\r\n")
            else:
                request.keep_alive = False  # the end of the body is the end of the connection
        if status != 101:
            if not request.keep_alive or self._conn.closing:
                request.keep_alive = False
                lines.append(b"Connection: close\r\n")
            elif request.version == "1.0":
                lines.append(b"Connection: keep-alive\r\n")
        lines.append(b"\r\n")
        self._head = b"".join(lines)

    async def write(self, data: bytes) -> None:
        """Send part of the body; waits while the visitor's socket is full. Raises
        ConnectionResetError when the visitor went away."""
        if not data or not self._body_allowed:
            if self._head:
                self._flush_head()
            return
        if self._chunked:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        if self._head:
            data = self._head + data
            self._head = b""
        await self._conn.send(data)

    async def end(self, data: bytes = b"") -> None:
        """The last part of the body (if any) and the end of the answer."""
        if self.finished:
            return
        self.finished = True
        out = self._head
        self._head = b""
        if data and self._body_allowed:
            out += b"%x\r\n%b\r\n" % (len(data), data) if self._chunked else data
        if self._chunked:
            out += b"0\r\n\r\n"
        if out:
            await self._conn.send(out)

    def interim(self, status: int, reason: bytes, headers: RawHeaders) -> None:
        """A 1xx answer before the final one (103 Early Hints), sent at once to an
        HTTP/1.1 visitor (HTTP/1.0 knows none)."""
        if self.started or self._request.version != "1.1":
            return
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        lines += [name + b": " + value + b"\r\n" for name, value in headers]
        lines.append(b"\r\n")
        self._conn.write(b"".join(lines))

    async def send(self, status: int, reason: bytes, headers: RawHeaders,
                   body: bytes) -> None:
        """A whole answer at once (pages, redirects)."""
        self.start(status, reason, [*headers, (b"Content-Length", b"%d" % len(body))])
        await self.end(body)

    @property
    def connection(self) -> HttpConnection:
        return self._conn

    def _flush_head(self) -> None:
        self._conn.write(self._head)
        self._head = b""


Handler = Callable[[Request, Response], Awaitable[None]]


class HttpConnection(asyncio.Protocol):
    """One visitor's connection. Slotted: thousands of idle keep-alive connections are
    each one of these, so no per-instance dict."""

    __slots__ = (
        "__weakref__",
        "_current",
        "_drain",
        "_early",
        "_fields_size",
        "_head_size",
        "_headers",
        "_in_head",
        "_parser",
        "_queue",
        "_read_paused",
        "_refused",
        "_task",
        "_trailer_size",
        "_tunnel",
        "_upgraded",
        "_url",
        "_write_paused",
        "closed",
        "closing",
        "handler",
        "head_started",
        "last_active",
        "limits",
        "loop",
        "max_field_size",
        "max_line_size",
        "over_capacity",
        "registry",
        "remote",
        "requests_seen",
        "secure",
        "transport",
        "tunnel_closed",
        "write_paused_since",
    )

    def __init__(self, handler: Handler, *, loop: asyncio.AbstractEventLoop,
                 max_line_size: int = 8190, max_field_size: int = 8190,
                 registry: set[HttpConnection] | None = None,
                 limits: Limits | None = None, over_capacity: bool = False) -> None:
        self.handler = handler
        self.loop = loop
        self.max_line_size = max_line_size
        self.max_field_size = max_field_size
        self.registry = registry
        self.limits = limits or _DEFAULT_LIMITS
        #: Made beyond ``max_connections``: answers 503 and closes.
        self.over_capacity = over_capacity
        self.transport: asyncio.Transport | None = None
        self.remote: str | None = None
        self.secure = False
        self.closed = False
        #: Finish the current answer, then close (the server is stopping).
        self.closing = False
        self.requests_seen = 0
        self.last_active = loop.time()
        #: When the request head being received began (or the connection, for its first).
        self.head_started = self.last_active
        #: Since when the visitor's socket would take no more of its answer (0: it does).
        self.write_paused_since = 0.0
        #: None between requests of an idle connection (made again by its next bytes).
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = _NO_HEADERS
        self._head_size = 0
        self._fields_size = 0
        self._trailer_size = 0
        self._in_head = False
        self._refused = False
        self._current: Request | None = None  # being received
        # To answer, in order: a list, not a deque (whose first block alone is 600 bytes per
        # idle connection; more than one request waits only when a visitor pipelines).
        self._queue: list[Request] = []
        #: Answers the queued requests in turn; ends when the queue is empty (a request
        #: head starts another), so an idle keep-alive connection holds no task.
        self._task: asyncio.Task[None] | None = None
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._read_paused = False
        self._upgraded = False
        self._tunnel: asyncio.Transport | None = None
        self._early: list[bytes] = []  # bytes after an upgrade request, before the tunnel
        self.tunnel_closed: asyncio.Future[None] | None = None

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.remote = plain_address(peer[0]) if isinstance(peer, tuple) else None
        self.secure = transport.get_extra_info("sslcontext") is not None
        if self.over_capacity:
            self._refuse_connection()
            return
        if self.registry is not None:
            self.registry.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        if self._upgraded:
            if self._tunnel is not None:
                self._tunnel.write(data)
            else:
                self._early.append(data)
            return
        if self._refused:
            return
        if b"\t" in data and (self._in_head or self._current is None) \
                and _TAB_BEFORE_LENGTH.search(data, 0, _head_end(data)):
            # llhttp drops the whitespace before a value, so only the raw bytes show it;
            # nginx refuses a tab there (a space is fine), and so does the proxy.
            self._refuse(400, "Bad Request")
            return
        parser = self._parser
        if parser is None:
            parser = self._parser = httptools.HttpRequestParser(self)
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgraded = True
            rest = data[exc.args[0]:] if exc.args else b""
            if rest:
                self._early.append(rest)
            return
        except httptools.HttpParserError:
            self._refuse(400, "Bad Request")  # unless a callback refused it already
            return
        if self._in_head:  # a head still incomplete: bound what the parser holds
            self._head_size += len(data)
            if self._head_size > self.limits.max_head_size:
                self._refuse(431, "Request Header Fields Too Large")

    def eof_received(self) -> bool | None:
        return False  # close (a tunnel closes its other end then)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.registry is not None:
            self.registry.discard(self)
        if self._current is not None:
            self._current._wake()
        for request in self._queue:
            request._wake()
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)
        if self._tunnel is not None:
            self._tunnel.close()
        if self.tunnel_closed is not None and not self.tunnel_closed.done():
            self.tunnel_closed.set_result(None)
        task = self._task
        if task is not None and not task.done():
            # Nobody is left to answer: stop waiting for the app (the handler's cleanup
            # still runs: the access line, the count of requests in flight).
            task.cancel()

    def pause_writing(self) -> None:
        if self._tunnel is not None:
            self._tunnel.pause_reading()
        self._write_paused = True
        self.write_paused_since = self.loop.time()

    def resume_writing(self) -> None:
        if self._tunnel is not None:
            self._tunnel.resume_reading()
        self._write_paused = False
        self.write_paused_since = 0.0
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        if self.requests_seen:  # the first head's clock started with the connection
            self.head_started = self.loop.time()
        self._head_size = 0
        self._fields_size = 0
        self._url = b""
        self._headers = []

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.max_line_size:
            self._refuse(414, "URI Too Long")
            raise _Refused  # httptools turns it into an HttpParserCallbackError

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value) + 2
        if not self._in_head:
            # A trailer of a chunked body: never a header of the request (it would let a
            # visitor add Host, Cookie... after the proxy's checks); dropped, but bounded.
            self._trailer_size += size
            if self._trailer_size > self.limits.max_head_size:
                self._refuse(431, "Request Header Fields Too Large")
                raise _Refused
            return
        headers = self._headers
        self._fields_size += size + 2
        if size > self.max_field_size or len(headers) >= self.limits.max_headers:
            self._refuse(431, "Request Header Fields Too Large")
            raise _Refused
        headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        self._in_head = False
        self._trailer_size = 0
        method = parser.get_method().decode("ascii", "replace")
        version = parser.get_http_version()
        headers = self._headers
        # The size of the head in this read too (data_received counts whole reads).
        if len(self._url) + self._fields_size > self.limits.max_head_size:
            self._refuse(431, "Request Header Fields Too Large")
            raise _Refused
        try:
            framing = parse_request_framing(method, self._url, version, headers)
            upgrade = parser.should_upgrade()
            if upgrade and (framing.chunked or framing.content_length):
                raise Refusal(400, "Bad Request", "an upgrade request with a body")
        except Refusal as refusal:
            log.debug("refused %s %r: %s", method, self._url[:200], refusal)
            self._refuse(refusal.status, refusal.reason)
            raise _Refused from None
        request = Request(self, method, self._url, headers, version,
                          parser.should_keep_alive(), upgrade, framing)
        self._headers = _NO_HEADERS  # the request has them; a new head gets a new list
        self._url = b""
        self._current = request
        self._enqueue(request)

    def _enqueue(self, request: Request) -> None:
        self._queue.append(request)
        self.requests_seen += 1
        if self._task is None:
            self._task = self.loop.create_task(self._answer_all())

    def on_body(self, body: bytes) -> None:
        if self._current is not None:
            self._current._feed(body)

    def on_message_complete(self) -> None:
        request = self._current
        if request is not None:
            request._end()
            self._current = None
        if len(self._queue) > 1:
            self.pause_reading()  # pipelined requests: no more until the queue shrinks

    # -- answering ---------------------------------------------------------------------

    async def _answer_all(self) -> None:
        try:
            while not self.closed:
                if not self._queue:
                    # Keep-alive: the next request's head starts a new task, and its
                    # bytes a new parser (an idle connection holds no task, frame, future
                    # or parser: memory per connection).
                    if not self._in_head and self._current is None and not self._upgraded:
                        self._parser = None
                    return
                request = self._queue[0]
                response = Response(self, request)
                refusal = request.refusal
                if refusal is not None:
                    # Refused by the parser or the limits: answered in its turn (after
                    # the valid requests pipelined before it), then the connection ends.
                    body = f"{refusal.status} {refusal.reason}\n".encode()
                    with contextlib.suppress(ConnectionError):
                        await response.send(refusal.status, refusal.reason.encode(),
                                            [(b"Content-Type", b"text/plain")], body)
                    self.close()
                    return
                try:
                    await self.handler(request, response)
                    if not response.started:
                        await response.send(500, b"Internal Server Error", [], b"")
                    else:
                        await response.end()
                except (ConnectionError, asyncio.CancelledError):
                    self.abort()
                    return
                except Exception:
                    log.exception("answering %s %s failed", request.method, request.raw_path)
                    if response.started:
                        self.abort()
                        return
                    request.keep_alive = False
                    await response.send(500, b"Internal Server Error",
                                        [(b"Content-Type", b"text/plain")],
                                        b"500 Internal Server Error\n")
                del self._queue[0]
                self.last_active = self.loop.time()
                if self._upgraded:
                    # The tunnel ended, or the app refused the upgrade (after an upgrade
                    # request the parser cannot go on): either way the connection is done.
                    self.close()
                    return
                if not request.keep_alive or self.closing:
                    self.close()
                    return
                if not request._complete:
                    # An answer before the whole body arrived: its rest cannot be told
                    # from the next request without reading it; give up the connection.
                    self.close()
                    return
                self.resume_reading()
        finally:
            self._task = None

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    async def send(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise ConnectionResetError("the visitor closed the connection")
        self.transport.write(data)
        if self._write_paused:
            self._drain = self.loop.create_future()
            try:
                await self._drain
            finally:
                self._drain = None
            if self.closed:
                raise ConnectionResetError("the visitor closed the connection")

    def start_tunnel(self, peer: asyncio.Transport) -> asyncio.Future[None]:
        """From now on, bytes from the visitor go to ``peer`` as they are (after an
        upgrade); the future is done when the visitor's side closes."""
        self._tunnel = peer
        self.tunnel_closed = self.loop.create_future()
        for data in self._early:
            peer.write(data)
        self._early.clear()
        self.resume_reading()
        if self.closed:
            self.tunnel_closed.set_result(None)
        return self.tunnel_closed

    def pause_reading(self) -> None:
        if not self._read_paused and self.transport is not None and not self.closed:
            self._read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._read_paused and self.transport is not None and not self.closed:
            self._read_paused = False
            self.transport.resume_reading()

    @property
    def idle(self) -> bool:
        """No request being received or answered (a request leaves the queue once
        answered)."""
        return not self._queue and not self._in_head

    @property
    def waiting(self) -> bool:
        """Nothing to answer: idle, or a request head still arriving."""
        return not self._queue

    @property
    def awaiting_first_request(self) -> bool:
        return self.requests_seen == 0 and not self.closed

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def _refuse(self, status: int, reason: str) -> None:
        """Answer a request the parser or the limits refused, in its turn, and close. A
        body that breaks mid-way fails its request's reads instead (its handler answers,
        if it still can)."""
        if self._refused or self.closed:
            return
        self._refused = True
        self._in_head = False
        current = self._current
        if current is not None:
            self._current = None
            current._fail(BadBody(status, reason))
            return
        request = Request(self, "GET", b"", [], "1.1", False, False)
        request.refusal = Refusal(status, reason, reason)
        self._enqueue(request)

    def _refuse_connection(self) -> None:
        """Too many connections: a 503, not a stalled accept."""
        self.closed = True
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain"
                             b"\r\nContent-Length: 24\r\nConnection: close\r\n\r\n"
                             b"503 Service Unavailable\n")
        self.transport.close()

    def check_timeouts(self, now: float) -> str | None:
        """Enforce the timeouts that the sweep keeps (the visitor's side); the name of the
        one that fired, if any."""
        limits = self.limits
        if self.closed:
            return None
        if self.write_paused_since:
            limit = limits.tunnel_idle_timeout if self._upgraded \
                else limits.visitor_idle_timeout
            if now - self.write_paused_since >= limit:
                name = "tunnel_idle_timeout" if self._upgraded else "visitor_idle_timeout"
                log_fired(name, limit, f"{self.remote} read nothing of its answer")
                self.abort()
                return name
            return None
        if self._upgraded or self._refused or self._queue:
            return None  # a request being answered: the forwarder's timeouts apply
        if self._in_head or self.requests_seen == 0:
            if now - self.head_started >= limits.request_head_timeout:
                log_fired("request_head_timeout", limits.request_head_timeout,
                          f"no whole request head from {self.remote}")
                if self._in_head:
                    self._refuse(408, "Request Timeout")
                else:  # not a byte sent: nothing to answer
                    self.close()
                return "request_head_timeout"
        elif now - self.last_active >= limits.keepalive_timeout:
            self.close()
            return "keepalive_timeout"
        return None


def plain_address(address: str) -> str:
    """An IPv4 visitor on a dual-stack socket as plain IPv4 (``::ffff:1.2.3.4`` ->
    ``1.2.3.4``). Pure."""
    if address.startswith("::ffff:") and "." in address:
        return address[7:]
    return address


_DEFAULT_LIMITS = Limits()
#: What ``_headers`` is between heads (never appended to: a head starts a new list).
_NO_HEADERS: list[tuple[bytes, bytes]] = []
#: A Content-Length line whose value starts after a tab (in a head's raw bytes).
_TAB_BEFORE_LENGTH = re.compile(rb"\n[Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Ll][Ee][Nn][Gg][Tt][Hh]:"
                                rb"[ \t]*\t")


def _head_end(data: bytes) -> int:
    """Where the head in ``data`` ends (its blank line), or the end of ``data``."""
    end = data.find(b"\r\n\r\n")
    return len(data) if end < 0 else end


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a refused request."""
