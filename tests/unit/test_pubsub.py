"""The hub's in-process events: typed, synchronous, in order, one broken handler harmless."""

from __future__ import annotations

import logging

import pytest

from bindrop.hub.pubsub import AppCreated, AppDestroyed, ConfigChanged, PubSub, ReleaseChanged


def test_a_handler_gets_the_events_of_its_class_only_in_the_publishers_call() -> None:
    events = PubSub()
    seen: list[object] = []
    events.subscribe(ReleaseChanged, seen.append)
    events.publish(AppCreated("blog"))
    events.publish(ReleaseChanged("blog", 3))
    events.publish(ConfigChanged("blog", ("hosts",)))
    assert seen == [ReleaseChanged("blog", 3)]


def test_handlers_run_in_the_order_they_subscribed() -> None:
    events = PubSub()
    order: list[str] = []
    events.subscribe(AppDestroyed, lambda e: order.append(f"first {e.app}"))
    events.subscribe(AppDestroyed, lambda e: order.append(f"second {e.app}"))
    events.publish(AppDestroyed("blog"))
    assert order == ["first blog", "second blog"]


def test_an_unsubscribed_handler_hears_nothing_more() -> None:
    events = PubSub()
    seen: list[object] = []
    unsubscribe = events.subscribe(AppCreated, seen.append)
    events.publish(AppCreated("a"))
    unsubscribe()
    unsubscribe()  # twice is harmless
    events.publish(AppCreated("b"))
    assert seen == [AppCreated("a")]


def test_a_handler_that_raises_is_logged_and_the_others_still_hear(
        caplog: pytest.LogCaptureFixture) -> None:
    events = PubSub()
    seen: list[object] = []

    def broken(event: AppCreated) -> None:
        raise RuntimeError("broken follower")

    events.subscribe(AppCreated, broken)
    events.subscribe(AppCreated, seen.append)
    with caplog.at_level(logging.ERROR, logger="bindrop.hub.pubsub"):
        events.publish(AppCreated("blog"))
    assert seen == [AppCreated("blog")]
    assert "AppCreated" in caplog.text


def test_a_handler_may_unsubscribe_while_it_is_called() -> None:
    events = PubSub()
    seen: list[str] = []

    def once(event: AppCreated) -> None:
        seen.append("once")
        unsubscribe()

    unsubscribe = events.subscribe(AppCreated, once)
    events.subscribe(AppCreated, lambda e: seen.append("always"))
    events.publish(AppCreated("a"))
    events.publish(AppCreated("b"))
    assert seen == ["once", "always", "always"]
