"""bindrop-proxy.socket + bindrop-proxy.service from bindrop/deploy/, in a real systemd."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest

from bindrop.machine import Machine
from bindrop.proxy.listen import bind_socket
from bindrop.settings import Settings
from bindrop.store import AppConfig, Store
from tests.proxy.kit import Backend, HubEnd

from .hubkit import HANG
from .proxykit import installed_proxy, running_hub_end

pytestmark = pytest.mark.integration



def free_port() -> int:
    with bind_socket("127.0.0.1", 0) as sock:
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def proxy_store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings) as store:
        store.create_app(AppConfig(name="web", hosts=("web.test",)))
        yield store


@pytest.fixture
async def hub_end(settings: Settings, proxy_store: Store) -> AsyncIterator[HubEnd]:
    async with running_hub_end(settings, proxy_store) as end:
        yield end


@pytest.fixture
def installed(machine: Machine, settings: Settings) -> Iterator[int]:
    """The proxy's units from deploy/ in the machine, listening on a free port (a drop-in,
    as install will render it), its hub socket and snapshot under the test's root."""
    with installed_proxy(machine, settings, free_port()) as port:
        yield port


async def get_status(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n")
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
    return int(data.split(b" ", 2)[1]) if data else 0


async def test_restarting_the_socket_activated_proxy_under_a_request_loop_loses_nothing(
        machine: Machine, installed: int, hub_end: HubEnd) -> None:
    backend = await Backend("web").start()
    await hub_end.publish("web", backend.port)
    results: Counter[str] = Counter()
    stop = asyncio.Event()

    async def visitor() -> None:
        while not stop.is_set():
            try:
                async with asyncio.timeout(HANG):
                    results[str(await get_status(installed))] += 1
            except (OSError, TimeoutError) as exc:
                results[type(exc).__name__] += 1

    visitors: list[asyncio.Task[None]] = []
    try:
        # The first connection starts the service (socket activation) and waits for it.
        async with asyncio.timeout(HANG):
            assert await get_status(installed) == 200
            # One worker may answer before the other serves; systemd hears READY=1 (and the
            # unit turns active) once every worker does.
            while machine.exec("systemctl", "is-active", "bindrop-proxy.service",
                               check=False).stdout.strip() != "active":
                await asyncio.sleep(0.05)
        visitors = [asyncio.ensure_future(visitor()) for _ in range(4)]
        for _ in range(2):
            await asyncio.sleep(0.5)
            before = results["200"]
            await asyncio.to_thread(machine.exec, "systemctl", "restart",
                                    "bindrop-proxy.service")
            async with asyncio.timeout(HANG):
                while results["200"] < before + 20:
                    await asyncio.sleep(0.05)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.gather(*visitors)
        await backend.stop()
    assert set(results) == {"200"}, results
    log = machine.exec("journalctl", "-u", "bindrop-proxy.service", "-o", "cat").stdout
    assert "serving 1 sockets passed by systemd" in log
    assert '"host":"web.test","path":"/","status":200' in log
