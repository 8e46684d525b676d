"""The control API's routes for proxies: the route stream, acks and drain reports.

``add_proxy_routes(app, link)`` adds them to the API's aiohttp application; the messages and
their paths are ``bindrop.client.proxywire``'s, the exchange is documented in
``bindrop.hub.proxylink``. They belong on the root-only unix socket: a proxy is part of the
server, not a remote client.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web

from bindrop.client.proxywire import (
    ACK_PATH,
    ACTIVITY_PATH,
    DRAINED_PATH,
    STREAM_PATH,
    TRAFFIC_PATH,
    WAKE_PATH,
    Message,
    Ping,
    encode_line,
    parse_ack,
    parse_activity,
    parse_drained,
    parse_traffic,
    parse_wake,
)
from bindrop.errors import BindropError, InvalidInput
from bindrop.hub.hub import Hub
from bindrop.hub.ondemand import CHECK_INTERVAL, OnDemand
from bindrop.hub.proxylink import ProxyLink
from bindrop.hub.traffic import traffic_of

_Body = TypeVar("_Body")


def add_proxy_routes(app: web.Application, link: ProxyLink, *, hub: Hub | None = None,
                     idle_check_interval: float = CHECK_INTERVAL) -> None:
    """Add the proxy routes to ``app``, bound to ``link``. With ``hub``, proxies may also
    wake on-demand apps, and idle ones are stopped by a task that lives as long as ``app``."""
    app.router.add_get(STREAM_PATH, _stream(link))
    app.router.add_post(ACK_PATH, _report(parse_ack, lambda r: link.ack(r.proxy, r.version)))
    app.router.add_post(DRAINED_PATH, _report(
        parse_drained, lambda r: link.report_drained(r.proxy, r.unit)))
    app.router.add_post(ACTIVITY_PATH, _report(
        parse_activity, lambda r: link.record_activity(r.apps)))

    async def end_streams(_app: web.Application) -> None:
        link.end_streams()  # else shutting down waits for every proxy's endless stream

    app.on_shutdown.append(end_streams)
    if hub is not None:
        on_demand = OnDemand(hub.store, hub.state, hub.submit, link,
                             check_interval=idle_check_interval)
        app.router.add_post(WAKE_PATH, _wake(on_demand))
        app.router.add_post(TRAFFIC_PATH, _report(
            parse_traffic, lambda r: hub.metrics.record_traffic(traffic_of(r))))

        async def idle_stops(_app: web.Application) -> AsyncIterator[None]:
            async with on_demand.running():
                yield

        app.cleanup_ctx.append(idle_stops)


def _stream(link: ProxyLink) -> Any:
    async def stream(request: web.Request) -> web.StreamResponse:
        proxy_id = request.query.get("proxy") or f"proxy-{uuid.uuid4().hex[:8]}"

        def alive() -> bool:
            transport = request.transport
            return transport is not None and not transport.is_closing()

        peer = link.connect(proxy_id, alive)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson",
                                               "Cache-Control": "no-store"})
        try:
            await response.prepare(request)
            while True:
                message: Message | None
                try:
                    message = await asyncio.wait_for(peer.outbox.get(), link.ping_interval)
                except TimeoutError:
                    message = Ping()
                if message is None:  # replaced by a newer stream of the same proxy, or closing
                    break
                await response.write(encode_line(message))
        except ConnectionError:  # the proxy went away
            pass
        finally:
            link.disconnect(peer)
        return response

    return stream


def _report(parse: Callable[[Mapping[str, Any]], _Body],
            apply: Callable[[_Body], None]) -> Any:
    """The handler of a report a proxy posts: read by the wire's ``parse``, handed to
    ``apply``, answered 204 (400 if it cannot be read)."""
    async def report(request: web.Request) -> web.Response:
        apply(await _json(request, parse))
        return web.Response(status=204)

    return report


def _wake(on_demand: OnDemand) -> Any:
    async def wake(request: web.Request) -> web.Response:
        asked = await _json(request, parse_wake)
        try:
            outcome = await on_demand.wake(asked.app)
        except BindropError as exc:
            return web.json_response(exc.to_dict(), status=exc.status)
        return web.json_response(outcome.to_dict())

    return wake


async def _json(request: web.Request, parse: Callable[[Mapping[str, Any]], _Body]) -> _Body:
    """The request's body read by one of the wire's parsers; 400 if it cannot be."""
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    try:
        return parse(body)
    except InvalidInput as exc:
        raise web.HTTPBadRequest(text=exc.message) from None
