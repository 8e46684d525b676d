"""The proxy process: listening sockets, the forwarder, the hub link, graceful stop.

``ProxyServer`` is what ``bindrop proxy`` runs and what tests start in-process. On start it
serves the route snapshot from disk (if any) at once, and the hub's last TLS state (redirects
to https, HSTS) saved beside it, then follows the hub. On close it stops
accepting, lets requests in flight finish (bounded), and closes only its own copies of the
sockets: under socket activation systemd keeps them, and queues connections for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TextIO

from bindrop.client.proxywire import TlsState
from bindrop.proxy.acceptor import Acceptor
from bindrop.proxy.accesslog import AccessLog
from bindrop.proxy.acme import TlsEdge
from bindrop.proxy.cache import RouteCache
from bindrop.proxy.certs import CHECK_INTERVAL, Certificates
from bindrop.proxy.counters import Counters
from bindrop.proxy.forward import Forwarder
from bindrop.proxy.http1 import HttpConnection
from bindrop.proxy.hublink import HubLink
from bindrop.proxy.inflight import InFlight
from bindrop.proxy.limits import Limits, log_fired
from bindrop.proxy.pages import Pages
from bindrop.proxy.snapshot import load_tls, save_tls, tls_snapshot_path
from bindrop.proxy.trusted import TrustedProxies, parse_trusted_proxies
from bindrop.proxy.upstream import UpstreamPool
from bindrop.settings import Settings

log = logging.getLogger(__name__)

SNAPSHOT_NAME = "proxy-routes.json"
#: After it stops accepting, how long the proxy waits at most for connections it accepted
#: but has no request from yet: closing them would reset a visitor whose request is on the way.
FIRST_REQUEST_WAIT = 2.0
#: At start, how long to hold connections (the kernel queues them) for the hub's current
#: table before serving the snapshot (or 404s, with none): routes may have changed while
#: the proxy was down.
FIRST_TABLE_WAIT = 3.0
#: How long a visitor's connection may stay open with no request (keep-alive).
KEEPALIVE_TIMEOUT = Limits.keepalive_timeout
#: How often the visitors' connections are checked against their timeouts (at most).
SWEEP_INTERVAL = 1.0


@dataclass(frozen=True)
class ProxyOptions:
    hub_socket: Path
    snapshot: Path | None
    upstream_timeout: float = 60.0
    connect_timeout: float = 5.0
    max_line_size: int = 8190
    max_field_size: int = 8190
    shutdown_timeout: float = 30.0
    first_table_wait: float = FIRST_TABLE_WAIT
    #: How long a request to a stopped on-demand app is held while the hub starts it.
    wake_timeout: float = 30.0
    #: How often the proxy tells the hub which apps had requests (for idle stops).
    activity_interval: float = 5.0
    scheme: str = "http"
    proxy_id: str = ""
    #: Count requests per app and release for the hub's metrics (``bindrop.proxy.counters``).
    count_traffic: bool = True
    #: Certificates for the HTTPS listener, ``<hostname>.crt`` + ``.key`` (``bindrop.proxy.certs``).
    tls_dir: Path | None = None
    #: How often the certificate files are checked for changes.
    cert_check_interval: float = CHECK_INTERVAL
    #: The TLS context handshakes start on, made before workers were forked so that they
    #: share its session-ticket keys (``certs.new_server_context``); None: this process's own.
    tls_front: ssl.SSLContext | None = field(default=None, compare=False, repr=False)
    #: The named timeouts and limits at the edge (``upstream_timeout`` is the answer head's).
    limits: Limits = field(default_factory=Limits)
    #: Peers (CIDR networks) whose X-Forwarded-* / Forwarded headers are kept.
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> ProxyOptions:
        """Defaults for this server: the hub's control socket, the snapshot in state_dir."""
        return cls(hub_socket=settings.control_socket,
                   snapshot=settings.state_dir / SNAPSHOT_NAME,
                   tls_dir=settings.etc_dir / "tls",
                   trusted_proxies=settings.trusted_proxies)


class ProxyServer:
    def __init__(self, options: ProxyOptions, *, access_out: TextIO | None = sys.stdout
                 ) -> None:
        self.options = options
        self.proxy_id = options.proxy_id or f"{socket.gethostname()}-{os.getpid()}-" \
                                            f"{uuid.uuid4().hex[:6]}"
        self.routes = RouteCache(options.snapshot)
        self.inflight = InFlight()
        self.access = AccessLog(access_out)
        #: ACME answers and the redirect to https, from the hub's ``tls`` messages.
        self.tls = TlsEdge(None, on_certs=self._reload_certificates)
        #: The last TLS state the hub sent, kept beside the route snapshot.
        self.tls_snapshot = tls_snapshot_path(options.snapshot) if options.snapshot else None
        self.counters = Counters()
        self.hub = HubLink(options.hub_socket, self.proxy_id, on_table=self.routes.swap,
                           on_tls=self._tls_update,
                           inflight=self.inflight, activity=self._activity,
                           activity_interval=options.activity_interval,
                           traffic=self.counters)
        self._forwarder: Forwarder | None = None
        #: Idle keep-alive connections to the apps (made at start).
        self.upstream_pool: UpstreamPool | None = None
        self._acceptors: list[Acceptor] = []
        self._sweep_task: asyncio.Task[None] | None = None
        #: Open connections from visitors.
        self.connections: set[HttpConnection] = set()
        self.sockets: list[socket.socket] = []
        self.https_sockets: list[socket.socket] = []
        self.certificates: Certificates | None = None
        self._cert_task: asyncio.Task[None] | None = None
        self._full_logged = False

    async def start(self, sockets: list[socket.socket],
                    https_sockets: list[socket.socket] | None = None) -> None:
        """Serve on ``sockets`` (already listening) once the hub sent its table, or after
        ``first_table_wait`` seconds from the snapshot on disk (the hub may be down); HTTPS
        on ``https_sockets`` with the certificates in ``options.tls_dir``."""
        https_sockets = list(https_sockets or ())
        self.routes.load_snapshot()
        self._load_tls_snapshot()
        self.hub.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.hub.connected.wait(), self.options.first_table_wait)
        self.upstream_pool = UpstreamPool(connect_timeout=self.options.connect_timeout)
        forwarder = self._forwarder = Forwarder(
            self.routes, self.upstream_pool,
            inflight=self.inflight, pages=Pages(),
            access=self.access, upstream_timeout=self.options.upstream_timeout,
            scheme=self.options.scheme, waker=self.hub.wake,
            wake_timeout=self.options.wake_timeout,
            https_port=https_sockets[0].getsockname()[1] if https_sockets else None,
            limits=self.options.limits,
            trusted_proxies=TrustedProxies(parse_trusted_proxies(
                self.options.trusted_proxies)),
            counters=self.counters if self.options.count_traffic else None)
        loop = asyncio.get_running_loop()
        options = self.options
        limits = options.limits
        self.tls.https_port = https_sockets[0].getsockname()[1] if https_sockets else 443
        handler = self.tls.wrap(forwarder.handle)

        def connection() -> HttpConnection:
            full = len(self.connections) >= limits.max_connections
            if full and not self._full_logged:  # once per time it fills up
                log_fired("max_connections", limits.max_connections, "this worker has as "
                          "many visitor connections as it takes; new ones get 503")
            self._full_logged = full
            return HttpConnection(handler, loop=loop,
                                  max_line_size=options.max_line_size,
                                  max_field_size=options.max_field_size,
                                  registry=self.connections, limits=limits,
                                  over_capacity=full)

        for sock in sockets:
            self._acceptors.append(Acceptor(sock, connection))
        if https_sockets:
            if self.options.tls_dir is None:
                raise ValueError("an HTTPS listener needs ProxyOptions.tls_dir")
            self.certificates = Certificates(self.options.tls_dir, self.options.tls_front)
            for sock in https_sockets:
                self._acceptors.append(Acceptor(sock, connection,
                                                ssl_context=self.certificates.context))
        for acceptor in self._acceptors:
            acceptor.start()
        if self.certificates is not None:
            self._cert_task = asyncio.create_task(self._watch_certificates(self.certificates))
        self._sweep_task = asyncio.create_task(self._close_idle_connections())
        self.sockets = sockets + https_sockets
        self.https_sockets = https_sockets

    def _load_tls_snapshot(self) -> None:
        """Serve the TLS state saved by an earlier run, as if the hub had just sent it: HTTPS
        wherever the hub last said so, also while it is down. Its next message replaces it."""
        state = load_tls(self.tls_snapshot) if self.tls_snapshot else None
        if state is not None:
            self.tls.update(state)
            log.info("serving TLS state %d from %s until the hub answers", state.version,
                     self.tls_snapshot)

    def _tls_update(self, state: TlsState) -> None:
        """The hub's TLS message: serve it, and save it (a failed save is logged, not fatal)."""
        self.tls.update(state)
        if self.tls_snapshot is not None:
            try:
                save_tls(self.tls_snapshot, state)
            except OSError as exc:
                log.warning("could not save the TLS snapshot %s: %s", self.tls_snapshot, exc)

    def _reload_certificates(self) -> None:
        """The hub wrote a new or renewed certificate: load it now (no restart)."""
        if self.certificates is not None:
            self.certificates.refresh(force=True)

    async def _watch_certificates(self, certificates: Certificates) -> None:
        while True:
            await asyncio.sleep(self.options.cert_check_interval)
            try:
                certificates.refresh()
            except Exception:  # one bad reload must not end the checks
                log.exception("reloading certificates from %s failed", certificates.directory)

    def _activity(self) -> set[str]:
        return self._forwarder.take_activity() if self._forwarder else set()

    @property
    def ports(self) -> list[int]:
        return [s.getsockname()[1] for s in self.sockets if s.family != socket.AF_UNIX]

    async def close(self) -> None:
        """Stop accepting, finish requests in flight (bounded), then disconnect. Idempotent."""
        await self.hub.close()
        task, self._cert_task = self._cert_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sweep, self._sweep_task = self._sweep_task, None
        if sweep is not None:
            sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweep
        acceptors, self._acceptors = self._acceptors, []
        if acceptors:
            for acceptor in acceptors:
                acceptor.stop()  # the kernel queues what comes next, for the next proxy
            for sock in self.sockets:
                sock.close()  # this process's copy; systemd's (or the parent's) stays open
            pending = {task for acceptor in acceptors for task in acceptor.pending}
            if pending:  # accepted, being set up (TLS handshakes): they get their answers
                await asyncio.wait(pending, timeout=FIRST_REQUEST_WAIT)
            await self._finish_connections(FIRST_REQUEST_WAIT, self.options.shutdown_timeout)
        forwarder, self._forwarder = self._forwarder, None
        if forwarder is not None:
            forwarder.close()
        self.access.flush()

    async def _finish_connections(self, first_request_wait: float, timeout: float) -> None:
        """Answer what was accepted: connections get ``first_request_wait`` for their first
        request, requests in flight ``timeout`` to finish; then the rest is cut off."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + first_request_wait
        await asyncio.sleep(0.02)  # connections accepted in the last batch get set up
        while any(c.awaiting_first_request for c in self.connections) \
                and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            conn.closing = True  # each closes after its current answer
            if conn.idle:
                conn.close()
        deadline = loop.time() + timeout
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            conn.abort()
        await asyncio.sleep(0)

    async def _close_idle_connections(self) -> None:
        """Enforce the visitors' side timeouts (request head, keep-alive, visitor not
        reading): a sweep over the connections instead of a timer per request."""
        loop = asyncio.get_running_loop()
        interval = min(SWEEP_INTERVAL, self.options.limits.smallest_timeout() / 4)
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for conn in list(self.connections):
                conn.check_timeouts(now)

    async def __aenter__(self) -> ProxyServer:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()
