"""Deploys through the proxy, against a real systemd: the hub's ProxyLink as its router."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bindrop.hub.commands import Deploy, Stop
from bindrop.hub.hub import Hub
from bindrop.hub.logs import JournalReader
from bindrop.hub.proxylink import ProxyLink
from bindrop.hub.pubsub import PubSub
from bindrop.hub.state import AppRunState, StateStore, is_up
from bindrop.machine import Machine
from bindrop.proxy.server import ProxyServer
from bindrop.settings import Settings
from bindrop.store import BlobStore, Store
from tests.proxy.kit import HubEnd, Visitors, get_text, proxy_options, running_proxy

from .conftest import stop_all
from .hubkit import HANG, add_app, wait_for_app

pytestmark = pytest.mark.integration


@pytest.fixture
async def linked_hub(settings: Settings, store: Store, blobs: BlobStore,
                     journal: JournalReader) -> AsyncIterator[tuple[Hub, HubEnd]]:
    """A hub whose router is a ProxyLink, serving the proxy routes on its control socket."""
    state, events = StateStore(), PubSub()
    link = ProxyLink(state, store, events)
    the_hub = Hub(settings, store, blobs, journal=journal, router=link, state=state,
                  events=events)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    end = HubEnd(link, settings.control_socket, hub=the_hub)
    await the_hub.start()
    await end.start()
    try:
        yield the_hub, end
    finally:
        await stop_all(the_hub)
        await end.stop()
        link.close()
        await the_hub.close()


@pytest.fixture
async def proxy(linked_hub: tuple[Hub, HubEnd], tmp_path: Path) -> AsyncIterator[ProxyServer]:
    async with running_proxy(proxy_options(linked_hub[1], tmp_path,
                                           activity_interval=0.2)) as p:
        yield p


async def get(port: int, host: str) -> tuple[int, str]:
    status, _, body = await get_text(port, host)
    return status, body


async def test_three_deploys_under_a_request_loop_through_the_proxy_lose_no_request(
        linked_hub: tuple[Hub, HubEnd], proxy: ProxyServer, store: Store, blobs: BlobStore,
        machine: Machine) -> None:
    hub, _ = linked_hub
    for label in ("one", "two", "three", "four"):
        add_app(store, blobs, "steady", "--label", label)
    await hub.call("steady", Deploy(1))
    port = proxy.ports[0]
    assert (await get(port, "steady.test"))[1].startswith("one from steady release 1")
    async with Visitors(port, "steady.test", hang=HANG) as visitors:
        for release in (2, 3, 4):
            await asyncio.sleep(0.2)
            outcome = await hub.call("steady", Deploy(release))
            assert outcome.stopped  # the old unit was drained and stopped before returning
        await asyncio.sleep(0.2)
    results, bodies = visitors.results, visitors.first_words
    assert set(results) == {"200"}, results
    assert results["200"] > 20
    assert bodies[-1] == "four"
    assert [b for b in dict.fromkeys(bodies)] == ["one", "two", "three", "four"]
    up = [u.name for u in hub.state.units_of("steady") if is_up(u)]
    assert up == ["bindrop-app-steady-4.service"]
    active = machine.exec("systemctl", "list-units", "--state=active", "--plain",
                          "--no-legend", "bindrop-app-steady-*").stdout.split()
    assert [w for w in active if w.startswith("bindrop-app-")] == up


async def test_a_stopped_app_finishes_what_it_took_answers_503_and_serves_after_a_deploy(
        linked_hub: tuple[Hub, HubEnd], proxy: ProxyServer, store: Store,
        blobs: BlobStore) -> None:
    hub, _ = linked_hub
    add_app(store, blobs, "pause", "--label", "back")
    await hub.call("pause", Deploy(1))
    assert (await get(proxy.ports[0], "pause.test"))[0] == 200
    slow = asyncio.ensure_future(get_text(proxy.ports[0], "pause.test", "/sleep/1"))
    await asyncio.sleep(0.3)  # taken by the app when the stop begins: it finishes first
    await hub.call("pause", Stop())
    status, _, body = await slow
    assert status == 200 and body.startswith("back from pause"), body
    status, body = await get(proxy.ports[0], "pause.test")
    assert status == 503 and "pause is not running" in body
    await hub.call("pause", Deploy(1))
    status, body = await get(proxy.ports[0], "pause.test")
    assert status == 200 and body.startswith("back from pause")


async def test_a_request_wakes_a_stopped_on_demand_app_and_idleness_stops_it_again(
        linked_hub: tuple[Hub, HubEnd], proxy: ProxyServer, store: Store,
        blobs: BlobStore) -> None:
    hub, _ = linked_hub
    add_app(store, blobs, "lazy", "--label", "woken", on_demand=True, idle_timeout_s=1.5)
    store.update_app("lazy", current_release=1, desired_state="stopped")
    linked_hub[1].link.refresh()  # written to the store directly: no event did it
    assert hub.state.app("lazy") is None
    status, body = await get(proxy.ports[0], "lazy.test")  # held until the app is ready
    assert status == 200 and body.startswith("woken from lazy release 1")
    # Requests keep it up past its idle timeout...
    for _ in range(8):
        await asyncio.sleep(0.25)
        assert (await get(proxy.ports[0], "lazy.test"))[0] == 200
    # ...and with none it stops, then wakes again on the next one.
    await wait_for_app(hub, "lazy", lambda v: v is None or v.state == AppRunState.STOPPED)
    assert store.get_app("lazy").desired_state == "stopped"
    status, body = await get(proxy.ports[0], "lazy.test")
    assert status == 200 and body.startswith("woken from lazy")


async def test_a_stopped_app_that_is_not_on_demand_is_not_woken(
        linked_hub: tuple[Hub, HubEnd], proxy: ProxyServer, store: Store,
        blobs: BlobStore) -> None:
    hub, _ = linked_hub
    add_app(store, blobs, "plain")
    store.update_app("plain", current_release=1, desired_state="stopped")
    linked_hub[1].link.refresh()
    status, body = await get(proxy.ports[0], "plain.test")
    assert status == 503 and "plain is not running" in body
    assert hub.state.app("plain") is None


async def test_a_no_overlap_deploy_holds_requests_instead_of_failing_them(
        linked_hub: tuple[Hub, HubEnd], proxy: ProxyServer, store: Store,
        blobs: BlobStore) -> None:
    hub, _ = linked_hub
    add_app(store, blobs, "single", "--label", "one", no_overlap=True)
    add_app(store, blobs, "single", "--label", "two", "--listen-after", "0.5")
    await hub.call("single", Deploy(1))
    port = proxy.ports[0]
    async with Visitors(port, "single.test", n=3, hang=HANG) as visitors:
        await asyncio.sleep(0.2)
        slow = asyncio.ensure_future(get_text(port, "single.test", "/sleep/1"))
        await asyncio.sleep(0.3)  # in release 1's hands when the deploy begins
        outcome = await hub.call("single", Deploy(2))
        await asyncio.sleep(0.2)
    # The old release finished what it had taken before it was stopped.
    status, _, body = await slow
    assert (status, body.split(" ", 1)[0]) == (200, "one"), body
    results, bodies = visitors.results, visitors.first_words
    # The old unit stopped before the new one started (never two at once)...
    assert outcome.stopped == () and outcome.unit == "bindrop-app-single-2.service"
    # ...and no visitor saw the gap: requests waited for release 2.
    assert set(results) == {"200"}, results
    assert [b for b in dict.fromkeys(bodies)] == ["one", "two"]
