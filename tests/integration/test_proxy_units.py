"""bindrop-proxy.socket + bindrop-proxy.service from bindrop/deploy/, in a real systemd."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from bindrop.machine import Machine
from bindrop.settings import Settings
from tests.proxy.kit import Backend, HubEnd, Visitors, get_status, wait_for_answers

from .hubkit import HANG
from .proxykit import free_port, installed_proxy, running_hub_end

pytestmark = pytest.mark.integration



@pytest.fixture
async def hub_end(settings: Settings) -> AsyncIterator[HubEnd]:
    async with running_hub_end(settings, "web") as end:
        yield end


@pytest.fixture
def installed(machine: Machine, settings: Settings) -> Iterator[int]:
    """The proxy's units from deploy/ in the machine, listening on a free port (a drop-in,
    as install will render it), its hub socket and snapshot under the test's root."""
    with installed_proxy(machine, settings, free_port()) as port:
        yield port


async def test_restarting_the_socket_activated_proxy_under_a_request_loop_loses_nothing(
        machine: Machine, installed: int, hub_end: HubEnd) -> None:
    backend = await Backend("web").start()
    await hub_end.publish("web", backend.port)
    try:
        # The first connection starts the service (socket activation) and waits for it.
        async with asyncio.timeout(HANG):
            assert await get_status(installed) == 200
            # One worker may answer before the other serves; systemd hears READY=1 (and the
            # unit turns active) once every worker does.
            while machine.exec("systemctl", "is-active", "bindrop-proxy.service",
                               check=False).stdout.strip() != "active":
                await asyncio.sleep(0.05)
        async with Visitors(installed, hang=HANG) as visitors:
            for _ in range(2):
                await asyncio.sleep(0.5)
                before = visitors.results["200"]
                await asyncio.to_thread(machine.exec, "systemctl", "restart",
                                        "bindrop-proxy.service")
                await wait_for_answers(visitors.results, before + 20, hang=HANG)
    finally:
        await backend.stop()
    assert set(visitors.results) == {"200"}, visitors.results
    log = machine.exec("journalctl", "-u", "bindrop-proxy.service", "-o", "cat").stdout
    assert "serving 1 sockets passed by systemd" in log
    assert '"host":"web.test","path":"/","status":200' in log
