"""Helpers for proxy tests: the hub's end of the link, a proxy, a test backend, a client.

The hub's end is real (a Store in SQLite, a StateStore, a ProxyLink and its HTTP routes on a
unix socket) without systemd: routes are published the way the deploy path does it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from bindrop.api.proxylink import add_proxy_routes
from bindrop.hub.hub import Hub
from bindrop.hub.proxylink import ProxyLink
from bindrop.hub.pubsub import PubSub
from bindrop.hub.state import Route, StateStore
from bindrop.proxy.listen import bind_socket
from bindrop.proxy.server import ProxyOptions, ProxyServer
from bindrop.store import Store
from bindrop.systemd.events import UnitChanged
from bindrop.systemd.types import ActiveState, SubState, UnitState

HANG = 20.0


@dataclass
class HubEnd:
    link: ProxyLink
    socket_path: Path
    hub: Hub | None = None  # with a hub: on-demand wake and idle stops too
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        add_proxy_routes(app, self.link, hub=self.hub, idle_check_interval=0.2)
        self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.UnixSite(self.runner, str(self.socket_path)).start()

    async def stop(self) -> None:
        """The hub goes away: its socket closes and every stream ends."""
        self.link.end_streams()
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def publish(self, app: str, port: int | None, release: str = "1") -> None:
        """Route ``app`` to ``port`` as the deploy path does, with its unit running (as the
        systemd watcher would report it); None stops it."""
        unit = f"bindrop-app-{app}-{release}.service"
        if port is None:
            await self.link.publish(app, None)
            return
        self.link.state.apply(UnitChanged(None, UnitState(
            unit, active_state=ActiveState.ACTIVE, sub_state=SubState.RUNNING, main_pid=1)))
        await self.link.publish(app, Route(unit, release, port))


@contextlib.asynccontextmanager
async def running_hub_end(store: Store, socket_path: Path) -> AsyncIterator[HubEnd]:
    """The hub's end of the proxy link, routing ``store``'s apps, on ``socket_path``."""
    # A proxy worker slow to confirm a table (a loaded machine) is waited for, not skipped.
    link = ProxyLink(StateStore(), store, PubSub(), ping_interval=0.5, confirm_timeout=HANG)
    end = HubEnd(link, socket_path)
    await end.start()
    try:
        yield end
    finally:
        await end.stop()
        link.close()


def proxy_options(hub: HubEnd, tmp_path: Path, **overrides: object) -> ProxyOptions:
    options = ProxyOptions(hub_socket=hub.socket_path, snapshot=tmp_path / "proxy-routes.json",
                           shutdown_timeout=5.0, proxy_id="test-proxy",
                           first_table_wait=0.3)
    return dataclasses.replace(options, **overrides)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_proxy(options: ProxyOptions, *, access_out: object = None,
                        wait_for_hub: bool = True) -> AsyncIterator[ProxyServer]:
    proxy = ProxyServer(options, access_out=access_out)  # type: ignore[arg-type]
    await proxy.start([bind_socket("127.0.0.1", 0)])
    try:
        if wait_for_hub:
            async with asyncio.timeout(HANG):
                await proxy.hub.connected.wait()
        yield proxy
    finally:
        await proxy.close()


# -- a backend that shows what it received --------------------------------------------------


@dataclass
class Backend:
    label: str
    port: int = 0
    seen: list[dict[str, object]] = field(default_factory=list)
    first_chunk: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/redirect", self.redirect)
        app.router.add_get("/set-cookie", self.set_cookie)
        app.router.add_get("/gzip", self.gzipped)
        app.router.add_get("/trickle", self.trickle)
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/hold", self.hold)
        app.router.add_get("/ws", self.websocket)
        app.router.add_post("/upload", self.upload)
        app.router.add_route("*", "/{tail:.*}", self.echo)
        return app

    async def start(self) -> Backend:
        self.runner = web.AppRunner(self.app(), handle_signals=False, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.SockSite(self.runner, bind_socket("127.0.0.1", 0))
        await site.start()
        self.port = site._sock.getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        seen = {"label": self.label, "method": request.method, "raw_path": request.raw_path,
                "headers": list(request.headers.items()), "body": len(body)}
        self.seen.append(seen)
        return web.json_response(seen)

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    async def set_cookie(self, request: web.Request) -> web.Response:
        response = web.Response(text="cookie set")
        response.set_cookie("session", "visitor-one")
        return response

    async def gzipped(self, request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(b"squeezed" * 100),
                            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})

    async def trickle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(3):
            await response.write(f"data: {i}\n\n".encode())
            await asyncio.sleep(0.3)
        await response.write_eof()
        return response

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def hold(self, request: web.Request) -> web.Response:
        """Answers only once the test sets ``release``."""
        self.first_chunk.set()
        await self.release.wait()
        return web.Response(text=f"held by {self.label}")

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.data == "close":
                await ws.close()
            else:
                await ws.send_str(f"{self.label} echo: {msg.data}")
        return ws

    async def upload(self, request: web.Request) -> web.Response:
        total = 0
        async for chunk in request.content.iter_any():
            total += len(chunk)
            self.first_chunk.set()
        return web.json_response({"received": total})


def seen_headers(answer: dict[str, object]) -> dict[str, str]:
    headers = answer["headers"]
    assert isinstance(headers, list)
    return {k.lower(): v for k, v in headers}


async def raw_request(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Send ``request`` bytes as they are; return everything the proxy answers."""
    async with asyncio.timeout(timeout):
        return await ask(port, request)


async def ask(port: int, data: bytes) -> bytes:
    """Send ``data`` to 127.0.0.1:``port`` as it is; everything answered until the other end
    closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()


def get_request(host: str = "web.test", path: str = "/") -> bytes:
    """A GET of ``path`` on ``host``, one request to a connection."""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


def status_of(raw: bytes) -> int:
    """The status of an answer; 0 for none (the connection closed without a word)."""
    return int(raw.split(b" ", 2)[1]) if raw else 0


async def get_status(port: int) -> int:
    """The status of a GET / on web.test; 0 when nothing is answered."""
    return status_of(await ask(port, get_request()))


async def get(port: int, host: str = "web.test", path: str = "/") -> tuple[int, bytes]:
    """A GET of ``path`` on ``host``: the status (an answer is required) and the body."""
    raw = await ask(port, get_request(host, path))
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def get_text(port: int, host: str = "web.test", path: str = "/"
                   ) -> tuple[int, str, str]:
    """A GET of ``path`` on ``host`` as text: the status (0 for no answer), head and body."""
    head, _, body = (await ask(port, get_request(host, path))).decode().partition("\r\n\r\n")
    return (int(head.split(" ", 2)[1]) if head else 0), head, body


class Visitors:
    """``n`` clients asking GET / on ``host`` at ``port`` over and over (``hang`` seconds at
    most an answer) while the ``async with`` block runs, ``settle`` seconds more on each side.
    Counts answers by status (errors by their type's name) and by X-Instance; keeps each
    answer's first word and the start of each answer that is not a 200."""

    def __init__(self, port: int, host: str = "web.test", n: int = 4, hang: float = HANG,
                 settle: float = 0.0) -> None:
        self.port, self.host, self.n, self.hang, self.settle = port, host, n, hang, settle
        self.results: Counter[str] = Counter()
        self.instances: Counter[str] = Counter()
        self.failures: list[str] = []
        self.first_words: list[str] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Future[None]] = []

    async def _visit(self) -> None:
        while not self._stop.is_set():
            try:
                async with asyncio.timeout(self.hang):
                    status, head, body = await get_text(self.port, self.host)
                self.results[str(status)] += 1
                if status != 200:
                    self.failures.append(page_text(body)[:300])
                self.instances[instance_of(head)] += 1
                self.first_words.append(body.split(" ", 1)[0])
            except (OSError, TimeoutError) as exc:
                self.results[type(exc).__name__] += 1

    async def __aenter__(self) -> Visitors:
        self._tasks = [asyncio.ensure_future(self._visit()) for _ in range(self.n)]
        await asyncio.sleep(self.settle)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(self.settle)
        self._stop.set()
        await asyncio.gather(*self._tasks)


def page_text(body: str) -> str:
    """An answer's text without its markup and style (what an error page says)."""
    body = re.sub(r"(?s)<(style|head)>.*?</\1>", " ", body)
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def instance_of(head: str) -> str:
    """The X-Instance header's value in an answer's head ("" when there is none)."""
    return next((line.split(":", 1)[1].strip() for line in head.split("\r\n")
                 if line.lower().startswith("x-instance:")), "")


async def wait_for_answers(results: Counter[str], ok: int, hang: float = HANG) -> None:
    """Until the request loop has counted ``ok`` 200s."""
    async with asyncio.timeout(hang):
        while results["200"] < ok:
            await asyncio.sleep(0.05)


def json_body(raw: bytes) -> dict[str, object]:
    body = raw.partition(b"\r\n\r\n")[2]
    result = json.loads(body)
    assert isinstance(result, dict)
    return result
