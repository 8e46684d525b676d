"""The control API's routes for proxies: the route stream, acks and drain reports.

``add_proxy_routes(app, link)`` adds them to the API's aiohttp application; the protocol is
documented in ``bindrop.hub.proxylink``. They belong on the root-only unix socket: a proxy is
part of the server, not a remote client.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bindrop.errors import BindropError, InvalidInput
from bindrop.hub.hub import Hub
from bindrop.hub.ondemand import CHECK_INTERVAL, OnDemand
from bindrop.hub.proxylink import ProxyLink
from bindrop.hub.traffic import parse_report

STREAM_PATH = "/v1/proxy/stream"
ACK_PATH = "/v1/proxy/ack"
DRAINED_PATH = "/v1/proxy/drained"
ACTIVITY_PATH = "/v1/proxy/activity"
WAKE_PATH = "/v1/proxy/wake"
TRAFFIC_PATH = "/v1/proxy/traffic"


def add_proxy_routes(app: web.Application, link: ProxyLink, *, hub: Hub | None = None,
                     idle_check_interval: float = CHECK_INTERVAL) -> None:
    """Add the proxy routes to ``app``, bound to ``link``. With ``hub``, proxies may also
    wake on-demand apps, and idle ones are stopped by a task that lives as long as ``app``."""
    app.router.add_get(STREAM_PATH, _stream(link))
    app.router.add_post(ACK_PATH, _ack(link))
    app.router.add_post(DRAINED_PATH, _drained(link))
    app.router.add_post(ACTIVITY_PATH, _activity(link))

    async def end_streams(_app: web.Application) -> None:
        link.end_streams()  # else shutting down waits for every proxy's endless stream

    app.on_shutdown.append(end_streams)
    if hub is not None:
        on_demand = OnDemand(hub.store, hub.state, hub.submit, link,
                             check_interval=idle_check_interval)
        app.router.add_post(WAKE_PATH, _wake(on_demand))
        app.router.add_post(TRAFFIC_PATH, _traffic(hub))

        async def idle_stops(_app: web.Application) -> AsyncIterator[None]:
            async with on_demand.running():
                yield

        app.cleanup_ctx.append(idle_stops)


def encode_line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


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
                try:
                    message = await asyncio.wait_for(peer.outbox.get(), link.ping_interval)
                except TimeoutError:
                    message = {"type": "ping"}
                if message is None:  # replaced by a newer stream of the same proxy, or closing
                    break
                await response.write(encode_line(message))
        except ConnectionError:  # the proxy went away
            pass
        finally:
            link.disconnect(peer)
        return response

    return stream


def _ack(link: ProxyLink) -> Any:
    async def ack(request: web.Request) -> web.Response:
        body = await _json(request)
        version = body.get("version")
        if not isinstance(version, int):
            raise web.HTTPBadRequest(text="version must be an integer")
        link.ack(_proxy_id(body), version)
        return web.Response(status=204)

    return ack


def _drained(link: ProxyLink) -> Any:
    async def drained(request: web.Request) -> web.Response:
        body = await _json(request)
        unit = body.get("unit")
        if not isinstance(unit, str):
            raise web.HTTPBadRequest(text="unit must be a unit name")
        link.report_drained(_proxy_id(body), unit)
        return web.Response(status=204)

    return drained


def _activity(link: ProxyLink) -> Any:
    async def activity(request: web.Request) -> web.Response:
        body = await _json(request)
        apps = body.get("apps")
        if not isinstance(apps, list) or not all(isinstance(a, str) for a in apps):
            raise web.HTTPBadRequest(text="apps must be a list of app names")
        _proxy_id(body)
        link.record_activity(apps)
        return web.Response(status=204)

    return activity


def _traffic(hub: Hub) -> Any:
    async def traffic(request: web.Request) -> web.Response:
        body = await _json(request)
        _proxy_id(body)
        try:
            entries = parse_report(body)
        except InvalidInput as exc:
            raise web.HTTPBadRequest(text=exc.message) from None
        hub.metrics.record_traffic(entries)
        return web.Response(status=204)

    return traffic


def _wake(on_demand: OnDemand) -> Any:
    async def wake(request: web.Request) -> web.Response:
        body = await _json(request)
        app = body.get("app")
        if not isinstance(app, str):
            raise web.HTTPBadRequest(text="app must be an app name")
        try:
            outcome = await on_demand.wake(app)
        except BindropError as exc:
            return web.json_response(exc.to_dict(), status=exc.status)
        return web.json_response(outcome.to_dict())

    return wake


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return body


def _proxy_id(body: dict[str, Any]) -> str:
    proxy = body.get("proxy")
    if not isinstance(proxy, str) or not proxy:
        raise web.HTTPBadRequest(text="proxy must be the id the proxy streamed with")
    return proxy
