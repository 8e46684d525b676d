"""Automatic HTTPS at the edge: ACME HTTP-01 answers and the redirect to https, before routing.

The hub sends what to do in ``tls`` messages (``bindrop.client.proxywire.TlsState``); the
proxy keeps the last one in memory. ``TlsEdge.wrap(handler)`` answers, ahead of the route
table and for any host:

- ``GET /.well-known/acme-challenge/<token>`` on plain HTTP: the key authorization the hub
  published for that token (200, text/plain), else 404. An app is never asked (an on-demand
  app is not woken) and nothing on disk is read.
- any other plain-HTTP request to a host with a valid certificate: 308 to the same URL on
  https (the hub leaves out hosts whose app says ``allow_http``).

and hands every other request to ``handler``. HTTPS answers to a host listed for HSTS get
``Strict-Transport-Security`` (the app's own, if it sent one, is replaced): the response is
made an ``HstsResponse``, which adds it to whatever head the forwarder starts.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import ClassVar

from bindrop.client.proxywire import TlsState
from bindrop.proxy.headers import RawHeaders, build_https_location, request_host
from bindrop.proxy.http1 import Request, Response

log = logging.getLogger(__name__)

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"

Handler = Callable[[Request, Response], Awaitable[None]]
STS = b"strict-transport-security"


class HstsResponse(Response):
    """A ``Response`` whose head carries Strict-Transport-Security (no state of its own: an
    answering ``Response`` becomes one by a change of class)."""

    __slots__ = ()
    value: ClassVar[bytes] = b"max-age=31536000"

    def start(self, status: int, reason: bytes, headers: RawHeaders) -> None:
        kept = [(n, v) for n, v in headers if n.lower() != STS]
        super().start(status, reason, [*kept, (b"Strict-Transport-Security", self.value)])


@functools.cache
def hsts_response_class(max_age: int) -> type[HstsResponse]:
    return type(f"HstsResponse{max_age}", (HstsResponse,),
                {"__slots__": (), "value": b"max-age=%d" % max_age})


class TlsEdge:
    def __init__(self, https_port: int | None,
                 on_certs: Callable[[], None] | None = None) -> None:
        self.https_port = https_port or 443
        self.state = TlsState()
        self.on_certs = on_certs

    def update(self, state: TlsState) -> None:
        """Serve ``state`` from now on; reload certificates if the hub says they changed."""
        old, self.state = self.state, state
        if state.certs != old.certs and self.on_certs is not None:
            try:
                self.on_certs()
            except Exception:  # a bad reload keeps the old certificates serving
                log.exception("reloading certificates after the hub's notice failed")

    def wrap(self, handler: Handler) -> Handler:
        async def handle(request: Request, response: Response) -> None:
            if not request.secure:
                path = request.raw_path
                if path.startswith(CHALLENGE_PREFIX):
                    return await self._challenge(request, response,
                                                 path[len(CHALLENGE_PREFIX):])
                if request_host(request.host) in self.state.redirect:
                    return await self._redirect(request, response)
            elif self.state.hsts and request_host(request.host) in self.state.hsts:
                response.__class__ = hsts_response_class(self.state.hsts_max_age)
            await handler(request, response)

        return handle

    async def _challenge(self, request: Request, response: Response, token: str) -> None:
        answer = self.state.challenges.get(token) if request.method in ("GET", "HEAD") \
            else None
        if answer is None:
            await response.send(404, b"Not Found", [
                (b"Content-Type", b"text/plain"), (b"Cache-Control", b"no-store")],
                b"no such ACME challenge here\n")
            return
        log.info("ACME challenge for %s answered", request_host(request.host))
        await response.send(200, b"OK", [(b"Content-Type", b"text/plain"),
                                         (b"Cache-Control", b"no-store")], answer.encode())

    async def _redirect(self, request: Request, response: Response) -> None:
        location = build_https_location(request.host, request.raw_path, self.https_port)
        await response.send(308, b"Permanent Redirect", [
            (b"Location", location.encode("utf-8", "surrogateescape")),
            (b"Cache-Control", b"no-store")], b"")
