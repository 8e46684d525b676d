"""The hub's in-process events: typed messages from the parts that change config to the
parts that follow it, synchronously.

The hub's operations publish what they changed (an app created, its settings changed, it
was destroyed, another release became current); cron, the proxy link, metrics and automatic
HTTPS subscribe to the kinds they react to. This is no history: the event log in the store
(``Store.add_event``) is what people read, written as before, and nothing reacts to its rows.

``publish`` calls every handler of the event's class in the order they subscribed, in the
publisher's own call, before it returns. A handler must be quick and must not block: one that
has work to do schedules it (``asyncio.ensure_future``, ``loop.call_soon``). A handler that
raises is logged; the others and the publisher go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppCreated:
    """A new app is stored (its hosts may need routes and certificates)."""

    app: str


@dataclass(frozen=True)
class ConfigChanged:
    """Settings of an app changed (``changed``: their names, e.g. ``hosts``)."""

    app: str
    changed: tuple[str, ...]


@dataclass(frozen=True)
class AppDestroyed:
    """The app and its config are gone."""

    app: str


@dataclass(frozen=True)
class ReleaseChanged:
    """A deploy or rollback made ``release`` the app's current release."""

    app: str
    release: int


HubEvent = AppCreated | ConfigChanged | AppDestroyed | ReleaseChanged
E = TypeVar("E", AppCreated, ConfigChanged, AppDestroyed, ReleaseChanged)
Unsubscribe = Callable[[], None]


class PubSub:
    """Handlers by event class; ``publish`` calls them synchronously, in order."""

    def __init__(self) -> None:
        self._handlers: dict[type[Any], list[Callable[[Any], None]]] = {}

    def subscribe(self, kind: type[E], handler: Callable[[E], None]) -> Unsubscribe:
        """Call ``handler`` with every ``kind`` event published from now on. Returns the
        unsubscribe."""
        handlers = self._handlers.setdefault(kind, [])
        handlers.append(handler)

        def unsubscribe() -> None:
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def publish(self, event: HubEvent) -> None:
        for handler in list(self._handlers.get(type(event), ())):
            try:
                handler(event)
            except Exception:  # one broken follower must not stop the others (or the hub)
                log.exception("a handler of %s failed", type(event).__name__)
