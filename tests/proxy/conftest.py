"""Proxy fixtures: the hub's end of the link (no systemd), backends, an in-process proxy."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bindrop.proxy.server import ProxyServer
from bindrop.store import AppConfig, Store

from .kit import Backend, HubEnd, proxy_options, running_hub_end, running_proxy
from .rawapp import RawApp


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "bindrop.db") as s:
        s.create_app(AppConfig(name="web", hosts=("web.test",)))
        s.create_app(AppConfig(name="api", hosts=("web.test/api", "api.test")))
        s.create_app(AppConfig(name="down", hosts=("down.test",),
                               maintenance_message="Back at noon: we are moving house."))
        s.create_app(AppConfig(name="small", hosts=("small.test",), body_limit=1000))
        yield s


@pytest.fixture
async def hub_end(store: Store, tmp_path: Path) -> AsyncIterator[HubEnd]:
    async with running_hub_end(store, tmp_path / "control.sock") as end:
        yield end


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    b = await Backend("web").start()
    try:
        yield b
    finally:
        await b.stop()


@pytest.fixture
async def raw_app(hub_end: HubEnd) -> AsyncIterator[RawApp]:
    """A raw app routed at api.test (published before the proxy starts)."""
    app = await RawApp().start()
    await hub_end.publish("api", app.port)
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture
def access_log() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
async def proxy(hub_end: HubEnd, backend: Backend, tmp_path: Path,
                access_log: io.StringIO) -> AsyncIterator[ProxyServer]:
    """A proxy in this process on 127.0.0.1:<port 0>, following ``hub_end``; ``web`` routed
    to ``backend``."""
    await hub_end.publish("web", backend.port)
    async with running_proxy(proxy_options(hub_end, tmp_path, upstream_timeout=1.0),
                             access_out=access_log) as p:
        yield p
