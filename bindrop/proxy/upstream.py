"""Keep-alive HTTP/1.1 connections to the apps, pooled per port, parsed with llhttp.

This is the forwarding path's client, below aiohttp's ``ClientSession`` because that is where
most of a proxied request's CPU went. It sends exactly the request line and headers it is
given (no redirects, cookies, decompression or headers of its own), streams bodies both
ways, and hands a connection back to the pool only after a complete response that allows
keep-alive. One request at a time per connection (no pipelining).

Flow control: while more than ``READ_BUFFER`` bytes of a response body wait for the visitor,
the app's socket is not read; while the app's socket will not take more, the upload waits.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Iterable
from typing import cast

import httptools

log = logging.getLogger(__name__)

#: Told of each 1xx answer but 101 (status, reason, headers) as it arrives.
InterimHandler = Callable[[int, bytes, list[tuple[bytes, bytes]]], None]

#: Response body bytes buffered before reading from the app pauses.
READ_BUFFER = 256 * 1024
#: How long an idle pooled connection may be reused (apps commonly time out at 60 s+).
KEEPALIVE_TIMEOUT = 15.0
#: Idle connections kept per port; more are closed as they come back.
MAX_IDLE_PER_PORT = 256


class UpstreamError(Exception):
    """The app closed, reset or garbled the connection."""


class UpstreamTimeout(UpstreamError):
    """A named timeout fired while waiting on the app."""

    def __init__(self, name: str, seconds: float, what: str) -> None:
        super().__init__(f"{name} ({seconds:g} s): {what}")
        self.name = name
        self.seconds = seconds


class _ExtraData(Exception):
    """Raised from a parser callback: bytes after the complete answer."""


class StaleConnection(UpstreamError):
    """A reused connection closed before the app sent a byte of the answer: the app had
    closed it while idle. Safe to retry a request that is safe to repeat."""


class UpstreamConnection(asyncio.Protocol):
    """One connection to an app. ``send_head``/``send_body``/``head``/``read`` per request."""

    def __init__(self, pool: UpstreamPool | None, port: int) -> None:
        self.pool = pool
        self._timeouts = pool.timeouts if pool is not None else Timeouts()
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.reused = False
        #: Activity in a tunnel (after a 101), for its idle timeout.
        self.last_active = 0.0
        #: Seconds a ``send_body`` may wait for the app's socket to take more.
        self.send_timeout: float | None = None
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._lost: Exception | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._reset()
        self._write_paused = False
        self._write_waiter: asyncio.Future[None] | None = None
        self._upgraded = False
        self._tunnel: asyncio.Transport | None = None
        self._tunnel_closed: asyncio.Future[None] | None = None
        self._early: list[bytes] = []

    def _reset(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = False
        #: Told of 1xx answers (set per request, after ``send_head``).
        self.on_interim: InterimHandler | None = None
        #: The app sent bytes past its answer: never reused.
        self.poisoned = False
        self._head_only = False
        self._got_bytes = False
        self._head_done: asyncio.Future[None] | None = None
        self._headers_complete = False
        self._complete = False
        self._chunks.clear()
        self._buffered = 0
        self._body_waiter: asyncio.Future[None] | None = None
        self._read_paused = False
        #: Body bytes still to come when the length is known and the parser is bypassed.
        self._remaining: int | None = None
        self._length: int | None = None
        self._framed = False  # Transfer-Encoding given

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they are one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        if self._upgraded:
            self.last_active = self._loop.time()
            if self._tunnel is not None:
                self._tunnel.write(data)
            else:
                self._early.append(data)
            return
        if self._remaining is not None:
            # A body of known length, past its first piece: counted, not parsed (httptools
            # would copy every piece once more).
            remaining = self._remaining
            if len(data) > remaining:
                self.on_body(data[:remaining])  # the answer, complete
                self._extra_data()
                return
            self.on_body(data)
            return
        parser = self._parser
        if parser is None:  # nothing asked, or the answer is complete: out of turn
            self._extra_data()
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:  # 101: the rest is the new protocol's
            self._upgraded = True
            rest = data[exc.args[0]:] if exc.args else b""
            if rest:
                self._early.append(rest)
        except httptools.HttpParserError as exc:
            if self._complete:  # garbage after a complete answer
                self._extra_data()
            else:
                self._fail(UpstreamError(f"the app's answer is not valid HTTP: {exc}"))

    def eof_received(self) -> bool | None:
        return False  # close our end too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self.pool is not None:
            self.pool.forget(self)
        closed = self._tunnel_closed
        if closed is not None and not closed.done():
            closed.set_result(None)
        if self._parser is not None and self._headers_complete and not self._complete \
                and self._reads_until_close():
            self._on_complete()  # a body delimited by the end of the connection
            return
        if self._parser is not None and not self._complete:
            if not self._got_bytes and self.reused:
                self._fail(StaleConnection("the app closed the idle connection"))
            else:
                self._fail(UpstreamError("the app closed the connection before its answer "
                                         "was complete"))
        self._wake_writer()

    def pause_writing(self) -> None:
        if self._tunnel is not None:
            self._tunnel.pause_reading()
        self._write_paused = True

    def resume_writing(self) -> None:
        if self._tunnel is not None:
            self._tunnel.resume_reading()
        self._write_paused = False
        self._wake_writer()

    # -- httptools callbacks -----------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        if self._complete:
            # A second answer to one request (bytes past a Content-Length, a body on a
            # 204): never parsed into the current one. (Bytes that are no answer at all
            # fail the parser, which ``data_received`` treats the same way.)
            raise _ExtraData
        self.reason = status

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._headers_complete:
            return  # a trailer of a chunked answer: never a header of the answer (dropped)
        self.headers.append((name, value))
        if len(name) == 14 and name.lower() == b"content-length":
            digits = value.strip(b" \t")
            if digits.isdigit():
                self._length = int(digits)
        elif len(name) == 17 and name.lower() == b"transfer-encoding":
            self._framed = True

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        status = parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An interim answer (100 Continue, 103 Early Hints): the final one follows,
            # read by the same parser (llhttp ends a 1xx message at its head).
            interim = self.on_interim
            if interim is not None:
                interim(status, self.reason, self.headers)
            self.headers = []
            self.reason = b""
            self._length = None
            self._framed = False
            return
        self.status = status
        self.keep_alive = parser.should_keep_alive()
        self._headers_complete = True
        waiter = self._head_done
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._head_only:  # HEAD: no body follows whatever the headers say
            self._on_complete()
        elif self._length and status >= 200 and status not in (204, 304) \
                and not self._framed:
            self._remaining = self._length

    def on_body(self, body: bytes) -> None:
        if self._complete:  # a body after a HEAD answer's head
            raise _ExtraData
        self._chunks.append(body)
        self._buffered += len(body)
        if self._remaining is not None:
            self._remaining -= len(body)
            if self._remaining == 0:
                self._on_complete()
        if self._buffered > READ_BUFFER and not self._read_paused and self.transport:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def on_message_complete(self) -> None:
        if self._headers_complete and not self._complete:
            self._on_complete()

    # -- internals ---------------------------------------------------------------------

    def _on_complete(self) -> None:
        self._complete = True
        self._parser = None
        self._remaining = None
        self._wake_reader()

    def _extra_data(self) -> None:
        """Bytes after the complete answer (or with no request): the connection is not
        reused, and the answer (if complete) still goes to the visitor."""
        log.warning("upstream sent more data than specified (app on port %d); its "
                    "connection is closed", self.port)
        self.poisoned = True
        if self._complete:
            self._parser = None
            if self.transport is not None:
                self.transport.abort()
        else:
            self._fail(UpstreamError("the app sent data without a request"))

    def _reads_until_close(self) -> bool:
        return self._length is None and not self._framed

    def _fail(self, exc: Exception) -> None:
        self._lost = exc
        self._parser = None
        if self.transport is not None:
            self.transport.abort()
        waiter = self._head_done
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self._wake_reader()

    def _wake_reader(self) -> None:
        waiter = self._body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_writer(self) -> None:
        waiter = self._write_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the request -------------------------------------------------------------------

    def send_head(self, head: bytes, *, head_only: bool) -> None:
        """Start a request: ``head`` is its request line and headers, ending in CRLF CRLF."""
        assert self.transport is not None
        self._reset()
        self._head_only = head_only
        self._parser = httptools.HttpResponseParser(self)
        if self._closed:  # lost before this request began: fail it now, not at a timeout
            self._fail(StaleConnection("the app closed the idle connection") if self.reused
                       else UpstreamError("the app closed the connection"))
            return
        self.transport.write(head)

    async def send_body(self, data: bytes) -> None:
        """Send part of the request body as it is (the caller frames it); waits while the
        app's socket is full."""
        if self._lost is not None or self._closed or self.transport is None:
            raise self._lost or UpstreamError("the app closed the connection")
        self.transport.write(data)
        while self._write_paused and not self._closed:
            self._write_waiter = self._loop.create_future()
            try:
                async with asyncio.timeout(self.send_timeout):
                    await self._write_waiter
            except TimeoutError:
                raise UpstreamTimeout("upload_idle_timeout", self.send_timeout or 0,
                                      "the app read nothing of the upload") from None
            finally:
                self._write_waiter = None

    async def head(self, timeout: float | None = None) -> None:
        """Wait for the answer's status line and headers (``status``, ``reason``,
        ``headers``). Raises ``UpstreamError``, or TimeoutError after ``timeout`` seconds
        (on a timer shared with the other requests due about then: cheaper than a timer,
        let alone ``asyncio.timeout``, per request)."""
        if self._headers_complete:
            return
        if self._lost is not None:
            raise self._lost
        done = self._head_done = self._loop.create_future()
        if timeout is None:
            await done
            return
        timeouts = self._timeouts
        due = timeouts.add(self._loop, done, timeout)
        try:
            await done
        finally:
            timeouts.discard(due, done)

    def take(self) -> bytes | None:
        """All of a complete answer's body, or None if more is to come (then ``read``)."""
        if not self._complete:
            return None
        data = b"".join(self._chunks) if len(self._chunks) != 1 else self._chunks[0]
        self._chunks.clear()
        self._buffered = 0
        return data

    async def read(self, timeout: float | None = None,
                   name: str = "answer_idle_timeout") -> bytes:
        """The next piece of the answer's body, b"" at its end. Raises ``UpstreamError``
        when the app goes away before the end, ``UpstreamTimeout`` (``name``) when it sends
        nothing for ``timeout`` seconds."""
        while not self._chunks:
            if self._complete:
                return b""
            if self._lost is not None:
                raise self._lost
            waiter = self._body_waiter = self._loop.create_future()
            if timeout is None:
                await waiter
            else:
                due = self._timeouts.add(self._loop, waiter, timeout)
                try:
                    await waiter
                except TimeoutError:
                    raise UpstreamTimeout(name, timeout, "the app sent nothing more of "
                                          "its answer") from None
                finally:
                    self._timeouts.discard(due, waiter)
            self._body_waiter = None
        if len(self._chunks) == 1 or self._buffered > 65536:
            data = self._chunks.popleft()  # large pieces go on one by one, uncopied
        else:
            data = b"".join(self._chunks)
            self._chunks.clear()
        self._buffered -= len(data)
        if self._read_paused and self._buffered <= READ_BUFFER // 2 \
                and self.transport is not None:
            self._read_paused = False
            self.transport.resume_reading()
        return data

    def start_tunnel(self, peer: asyncio.Transport) -> asyncio.Future[None]:
        """After a 101: bytes from the app go to ``peer`` as they are; the future is done
        when the app's side closes."""
        self._tunnel = peer
        self._tunnel_closed = self._loop.create_future()
        for data in self._early:
            peer.write(data)
        self._early.clear()
        if self._read_paused and self.transport is not None:
            self._read_paused = False
            self.transport.resume_reading()
        if self._closed:
            self._tunnel_closed.set_result(None)
        return self._tunnel_closed

    @property
    def complete(self) -> bool:
        """The whole answer has arrived (it may still be buffered for ``read``)."""
        return self._complete

    @property
    def length(self) -> int | None:
        """The answer's length as its framing gave it (None: chunked, or until close)."""
        return None if self._framed else self._length

    @property
    def pending(self) -> bool:
        """Body bytes have arrived that ``read`` has not returned yet."""
        return bool(self._chunks)

    def release(self) -> None:
        """Done with this request: back to the pool if the answer allows keep-alive, else
        closed."""
        if (self._complete and self.keep_alive and not self._chunks and not self._closed
                and self._lost is None and not self.poisoned and not self._upgraded
                and self.status != 101 and self.pool is not None):
            self.pool.put(self)
        else:
            self.close()

    def close(self) -> None:
        if self.transport is not None and not self._closed:
            if self._complete:
                self.transport.close()
            else:  # mid-answer: nothing of this connection is worth finishing
                self.transport.abort()
        self._closed = True
        if self.pool is not None:
            self.pool.forget(self)

    @property
    def usable(self) -> bool:
        return not self._closed and self.transport is not None \
            and not self.transport.is_closing()


class Timeouts:
    """Timeouts for many waits on few timers: the waits due within the same ``grain``
    seconds share one timer, which fires at the end of that span (so a timeout fires at
    most ``grain`` late, never early). Arming and disarming a wait are a set add and
    discard; a span's timer is cancelled once its waits are all done and no more can join
    (so few timers and sets are alive, not one per span of the whole timeout)."""

    def __init__(self, grain: float = 0.01) -> None:
        self.grain = grain
        self._due: dict[int, _Due] = {}
        self._newest = 0  # the span waits were last added to

    def add(self, loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None],
            timeout: float) -> _Due:
        """Fail ``waiter`` with TimeoutError after ``timeout`` seconds unless it is done by
        then; pass what this returns to ``discard`` once it is."""
        slot = int((loop.time() + timeout) / self.grain) + 1
        due = self._due.get(slot)
        if due is None:
            newest = self._due.get(self._newest)
            if newest is not None and not newest.waiters:
                self._drop(newest)
            due = self._due[slot] = _Due(slot, loop.call_at(slot * self.grain, self._expire,
                                                            slot))
        self._newest = slot
        due.waiters.add(waiter)
        return due

    def discard(self, due: _Due, waiter: asyncio.Future[None]) -> None:
        waiters = due.waiters
        waiters.discard(waiter)
        if not waiters and due.slot != self._newest:
            self._drop(due)

    def _drop(self, due: _Due) -> None:
        due.timer.cancel()
        if self._due.get(due.slot) is due:
            del self._due[due.slot]

    def _expire(self, slot: int) -> None:
        due = self._due.pop(slot, None)
        if due is not None:
            for waiter in due.waiters:
                if not waiter.done():
                    waiter.set_exception(TimeoutError())


class _Due:
    """The waits due in one span, and its timer."""

    __slots__ = ("slot", "timer", "waiters")

    def __init__(self, slot: int, timer: asyncio.TimerHandle) -> None:
        self.slot = slot
        self.timer = timer
        self.waiters: set[asyncio.Future[None]] = set()


def render_request_head(method: str, raw_url: bytes, headers: Iterable[tuple[bytes, bytes]],
                        *, chunked: bool = False, length: int | None = None) -> bytes:
    """The request line and headers to send upstream, bytes as given, and the framing the
    proxy decided: ``chunked`` (``Transfer-Encoding: chunked`` for a body of unknown
    length) or ``length`` (``Content-Length``); ``headers`` carry none. Pure.

    The visitor's side parsed them with llhttp, which refuses CR and LF inside them."""
    lines = [b"%s %s HTTP/1.1\r\n" % (method.encode("ascii"), raw_url)]
    lines += [name + b": " + value + b"\r\n" for name, value in headers]
    if chunked:
        lines.append(b"Transfer-Encoding: chunked\r\n")
    elif length is not None:
        lines.append(b"Content-Length: %d\r\n" % length)
    lines.append(b"\r\n")
    return b"".join(lines)


def frame_chunk(data: bytes) -> bytes:
    """One piece of a chunked body (b"" frames the last one). Pure."""
    return b"%x\r\n%b\r\n" % (len(data), data) if data else b"0\r\n\r\n"


class UpstreamPool:
    """Idle keep-alive connections per app port (127.0.0.1)."""

    def __init__(self, *, connect_timeout: float = 5.0,
                 keepalive_timeout: float = KEEPALIVE_TIMEOUT,
                 max_idle_per_port: int = MAX_IDLE_PER_PORT, host: str = "127.0.0.1") -> None:
        self.connect_timeout = connect_timeout
        self.keepalive_timeout = keepalive_timeout
        self.max_idle_per_port = max_idle_per_port
        self.host = host
        self._idle: dict[int, list[UpstreamConnection]] = {}
        #: The timeouts of its connections' waits for an answer.
        self.timeouts = Timeouts()

    def take_idle(self, port: int) -> UpstreamConnection | None:
        """An idle connection to ``port`` (``reused`` set), or None."""
        idle = self._idle.get(port)
        if idle:
            now = time.monotonic()
            while idle:
                conn = idle.pop()
                if conn.usable and now - conn.idle_since < self.keepalive_timeout:
                    conn.reused = True
                    return conn
                conn.close()
        return None

    async def connect(self, port: int) -> UpstreamConnection:
        """A new connection to ``port``, open. Raises OSError (TimeoutError included): then
        nothing was sent."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            _, conn = await loop.create_connection(lambda: UpstreamConnection(self, port),
                                                   self.host, port)
        if not conn.usable:  # reset (the app died) before this task ran again
            conn.close()
            raise ConnectionResetError(f"the connection to port {port} was reset at once")
        return conn

    def put(self, conn: UpstreamConnection) -> None:
        idle = self._idle.setdefault(conn.port, [])
        if len(idle) >= self.max_idle_per_port:
            conn.pool = None
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        idle = self._idle.get(conn.port)
        if idle and conn in idle:
            idle.remove(conn)
            if not idle:
                del self._idle[conn.port]

    def idle_count(self, port: int) -> int:
        return len(self._idle.get(port, ()))

    def close(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.pool = None
                conn.close()
