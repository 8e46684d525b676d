"""ProxyLink's bookkeeping: versions, confirmations, drains (no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bindrop.client.proxywire import Drain, RouteTable
from bindrop.hub.proxylink import ProxyLink, unconfirmed, undrained
from bindrop.hub.pubsub import AppCreated, ConfigChanged, PubSub
from bindrop.hub.state import Route, StateStore
from bindrop.store import AppConfig, Store


def test_unconfirmed_lists_proxies_behind_the_version() -> None:
    assert unconfirmed({"a": 3, "b": 2, "c": 4}, 3) == {"b"}
    assert unconfirmed({}, 3) == set()


def test_undrained_lists_proxies_that_did_not_report_the_unit() -> None:
    assert undrained({"a": {"u1"}, "b": set(), "c": {"u2"}}, "u1") == {"b", "c"}


@pytest.fixture
def events() -> PubSub:
    return PubSub()


@pytest.fixture
def link(tmp_path: Path, events: PubSub) -> Iterator[ProxyLink]:
    with Store(tmp_path / "db") as store:
        store.create_app(AppConfig(name="web", hosts=("web.test",)))
        link = ProxyLink(StateStore(), store, events, confirm_timeout=0.2)
        yield link
        link.close()


def test_the_version_grows_only_when_the_table_changes(link: ProxyLink) -> None:
    first = link.refresh()
    assert link.refresh() == first
    link.store.update_app("web", maintenance_message="later")
    assert link.refresh() == first + 1


async def test_a_published_config_change_refreshes_the_table_by_itself(
        link: ProxyLink, events: PubSub) -> None:
    before = link.table().version
    link.store.update_app("web", hosts=["web.test", "www.test"])
    events.publish(ConfigChanged("web", ("hosts",)))
    await asyncio.sleep(0)
    table = link.table()
    assert table.version == before + 1 and table.apps[0].hosts == ("web.test", "www.test")


async def test_a_row_in_the_event_log_is_history_and_rebuilds_nothing(
        link: ProxyLink) -> None:
    link.table()
    before = link.builds
    link.store.update_app("web", hosts=["web.test", "www.test"])
    link.store.add_event("app_updated", "web", "hosts changed")
    for _ in range(3):
        await asyncio.sleep(0)
    assert link.builds == before
    assert link.table().apps[0].hosts == ("web.test",)


async def test_a_route_flip_builds_the_table_once(link: ProxyLink) -> None:
    link.table()
    peer = link.connect("p1", alive=lambda: True)
    peer.outbox.get_nowait()
    for n, port in enumerate((20001, 20002, 20003), start=1):
        before = link.builds
        task = asyncio.ensure_future(link.publish("web", Route(f"u{n}.service", str(n), port)))
        message = await asyncio.wait_for(peer.outbox.get(), 1)
        assert isinstance(message, RouteTable)
        link.ack("p1", message.version)
        await asyncio.wait_for(task, 1)
        for _ in range(3):  # a rebuild queued by the flip's own state change would run now
            await asyncio.sleep(0)
        assert link.builds == before + 1, f"flip {n}"
        assert peer.outbox.empty()


async def test_changes_in_one_loop_turn_build_the_table_once(
        link: ProxyLink, events: PubSub) -> None:
    link.table()
    before = link.builds
    events.publish(ConfigChanged("web", ("hosts",)))
    events.publish(AppCreated("web"))
    link.state.set_holding("web", True)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert link.builds == before + 1


async def test_a_proxy_gets_the_whole_table_first_then_each_change(link: ProxyLink) -> None:
    peer = link.connect("p1", alive=lambda: True)
    assert peer.outbox.get_nowait() == link.table() and link.table().version == link.version
    task = asyncio.ensure_future(link.publish("web", Route("u.service", "1", 20001)))
    message = await asyncio.wait_for(peer.outbox.get(), 1)
    assert isinstance(message, RouteTable)
    assert message.apps[0].upstream is not None and message.apps[0].upstream.port == 20001
    link.ack("p1", message.version)
    await asyncio.wait_for(task, 1)


async def test_publish_waits_for_the_ack_not_for_a_proxy_that_went_away(
        link: ProxyLink) -> None:
    alive = True
    link.connect("p1", alive=lambda: alive)
    task = asyncio.ensure_future(link.publish("web", Route("u.service", "1", 20001)))
    await asyncio.sleep(0.05)
    assert not task.done()
    alive = False
    await asyncio.wait_for(task, 0.5)


async def test_a_reconnecting_proxy_ends_its_older_stream(link: ProxyLink) -> None:
    old = link.connect("p1", alive=lambda: True)
    link.connect("p1", alive=lambda: True)
    old.outbox.get_nowait()  # the table it was sent
    assert old.outbox.get_nowait() is None
    assert link.peers() == ["p1"]


async def test_drain_asks_each_proxy_and_returns_when_all_reported(link: ProxyLink) -> None:
    p1 = link.connect("p1", alive=lambda: True)
    p2 = link.connect("p2", alive=lambda: True)
    route = Route("old.service", "1", 20001)
    task = asyncio.ensure_future(link.drain(route, 5))
    await asyncio.sleep(0)
    for peer in (p1, p2):
        peer.outbox.get_nowait()
        assert peer.outbox.get_nowait() == Drain("old.service")
    link.report_drained("p1", "old.service")
    await asyncio.sleep(0.05)
    assert not task.done()
    link.report_drained("p2", "old.service")
    await asyncio.wait_for(task, 0.5)
