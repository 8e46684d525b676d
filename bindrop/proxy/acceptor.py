"""Accepting connections on a listening socket that several worker processes share.

asyncio's (and uvloop's) servers accept every pending connection at each wake-up, so the
worker that wakes first takes a whole burst: 26 of 32 keep-alive connections on one of two
workers was seen here, leaving the other idle. This acceptor takes one connection per
readiness event instead; every worker is woken, so a busy worker (its loop turns slower)
takes fewer and an idle one more.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import ssl
from collections.abc import Callable

log = logging.getLogger(__name__)

#: After "too many open files", how long to stop accepting (the kernel keeps queueing).
PAUSE_ON_EMFILE = 0.5
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_FD_ERRORS = frozenset({errno.EMFILE, errno.ENFILE})
#: Answered on a connection accepted with the spare descriptor when none was left.
_FULL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
         b"Content-Length: 24\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
         b"503 Service Unavailable\n")


class Acceptor:
    """Accepts on ``sock`` into connections made by ``factory`` (TLS with ``ssl_context``)."""

    def __init__(self, sock: socket.socket, factory: Callable[[], asyncio.Protocol], *,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.sock = sock
        self.factory = factory
        self.ssl_context = ssl_context
        self._loop = asyncio.get_running_loop()
        self._accepting = False
        #: A descriptor held in reserve: when none is left, it is freed to accept one
        #: connection and answer it 503, rather than leave visitors hanging in the queue.
        self._spare: int | None = _open_spare()
        #: Connections accepted and still being set up (a TLS handshake, say).
        self.pending: set[asyncio.Task[object]] = set()

    def start(self) -> None:
        self.sock.setblocking(False)
        self._accepting = True
        self._loop.add_reader(self.sock.fileno(), self._accept_one)

    def stop(self) -> None:
        """Accept no more (the socket stays open: it is shared, and systemd's)."""
        if self._accepting:
            self._accepting = False
            self._loop.remove_reader(self.sock.fileno())
        spare, self._spare = self._spare, None
        if spare is not None:
            os.close(spare)

    def _accept_one(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return  # another worker took it
        except OSError as exc:
            if exc.errno not in _RESOURCE_ERRORS:
                raise
            log.error("accepting a connection failed (%s); pausing %.1f s", exc,
                      PAUSE_ON_EMFILE)
            if exc.errno in _FD_ERRORS:
                self._refuse_one()
            self._accepting = False
            self._loop.remove_reader(self.sock.fileno())
            self._loop.call_later(PAUSE_ON_EMFILE, self._resume)
            return
        conn.setblocking(False)
        task = self._loop.create_task(self._set_up(conn))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    def _refuse_one(self) -> None:
        """Out of descriptors: free the spare, accept one visitor, answer it 503, close."""
        if self._spare is None:
            return
        os.close(self._spare)
        self._spare = None
        try:
            conn, _ = self.sock.accept()
        except OSError:
            pass
        else:
            with conn:
                if self.ssl_context is None:  # (a TLS visitor just sees the close)
                    try:
                        conn.setblocking(False)
                        conn.send(_FULL)
                    except OSError:
                        pass
        self._spare = _open_spare()

    def _resume(self) -> None:
        if not self._accepting and self.sock.fileno() >= 0:
            if self._spare is None:
                self._spare = _open_spare()
            self.start()

    async def _set_up(self, conn: socket.socket) -> object:
        try:
            return await self._loop.connect_accepted_socket(
                self.factory, conn, ssl=self.ssl_context)
        except (OSError, ssl.SSLError, asyncio.CancelledError, TimeoutError) as exc:
            conn.close()  # a failed handshake or a visitor gone already
            log.debug("setting up an accepted connection failed: %r", exc)
            return None


def _open_spare() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
