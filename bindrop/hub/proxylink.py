"""ProxyLink: the hub's side of the hub <-> proxy protocol, and the hub's ``RoutePublisher``.

The messages, their paths and their JSON are ``bindrop.client.proxywire``'s; proxies
connect to the hub over the control socket (handlers in ``bindrop.api.proxylink``):

    GET  /v1/proxy/stream?proxy=ID   long-lived, newline-delimited JSON from the hub:
         {"type": "table", "version": N, "apps": [...]}  the whole route table: first at
                                                         connect, then after every change
         {"type": "drain", "unit": U}                    "tell me when nothing is in flight
                                                         to U"
         {"type": "tls", "version": N, ...}              automatic HTTPS: ACME challenge
                                                         answers, hosts to redirect, a
                                                         certificate change (``announce``)
         {"type": "ping"}                                every ``ping_interval`` seconds
    POST /v1/proxy/ack      {"proxy": ID, "version": N}  "I now serve table N"
    POST /v1/proxy/drained  {"proxy": ID, "unit": U}     "no request to U is in flight"
    POST /v1/proxy/activity {"proxy": ID, "apps": [A]}   "these apps had requests lately"
    POST /v1/proxy/traffic  {"proxy": ID, "buckets", "traffic": [...]}  what it counted since
                                                         its last report (``Hub.metrics``)
    POST /v1/proxy/wake     {"app": A}                   start on-demand app A; answers
                                                         once it is ready (or with an error)

With the API on TCP, the table also routes the control host to it (``route_control``).
A table is sent whole (tables are small; a proxy swaps it whole). Versions grow by one per
change within one hub process; a proxy that reconnects takes whatever the hub sends as truth
and acknowledges that version. Messages on one stream arrive in order, so a proxy answers a
drain only after it has swapped in every table sent before it.

``publish`` sets the route in the state store, sends the new table and waits (bounded by
``confirm_timeout``) until every connected proxy acknowledged it; ``drain`` waits (bounded by
its timeout) until every connected proxy reported the old unit drained. A proxy that goes away
counts as done; with no proxy connected both return at once. Neither raises on a timeout:
the deploy goes on, and the late proxies are logged by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace

from bindrop.client.proxywire import AppRoute, Drain, Message, RouteTable, TlsState
from bindrop.hub.pubsub import AppCreated, AppDestroyed, ConfigChanged, HubEvent, PubSub
from bindrop.hub.router import Routes, as_routes
from bindrop.hub.routetable import ControlRoute, HostConflict, build_route_table
from bindrop.hub.state import AppStateChanged, Change, Route, StateStore
from bindrop.store import Store

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT = 2.0
PING_INTERVAL = 2.0
# How often a waiter looks again at whether a silent proxy is still connected.
_RECHECK = 0.1


@dataclass
class ProxyPeer:
    """One connected proxy, as the hub sees it. ``outbox`` feeds its stream (None ends it)."""

    id: str
    alive: Callable[[], bool]
    outbox: asyncio.Queue[Message | None] = field(default_factory=asyncio.Queue)
    acked: int = 0
    drained: set[str] = field(default_factory=set)

    def send(self, message: Message) -> None:
        self.outbox.put_nowait(message)


def unconfirmed(acked: Mapping[str, int], version: int) -> set[str]:
    """Proxies (by id) that have not acknowledged ``version`` or a later one. Pure."""
    return {proxy for proxy, seen in acked.items() if seen < version}


def undrained(drained: Mapping[str, Collection[str]], unit: str) -> set[str]:
    """Proxies (by id) that have not reported ``unit`` drained. Pure."""
    return {proxy for proxy, units in drained.items() if unit not in units}


class ProxyLink:
    """A ``RoutePublisher`` that keeps every connected proxy's route table current."""

    def __init__(self, state: StateStore, store: Store, events: PubSub, *,
                 confirm_timeout: float = CONFIRM_TIMEOUT,
                 ping_interval: float = PING_INTERVAL,
                 control: ControlRoute | None = None) -> None:
        self.state = state
        self.store = store
        #: The control API's route, once its TCP port is known (``route_control``).
        self.control = control
        self.confirm_timeout = confirm_timeout
        self.ping_interval = ping_interval
        self.version = 0
        self._apps: tuple[AppRoute, ...] | None = None
        self._conflicts: list[HostConflict] = []
        self._peers: dict[str, ProxyPeer] = {}
        #: The last message ``announce``d of each type: a proxy that connects gets them too.
        self._announced: dict[type[Message], Message] = {}
        self._reported = asyncio.Event()
        self._queued: asyncio.Handle | None = None
        #: How many times the table was built (each build reads every app's config).
        self.builds = 0
        #: When a proxy last reported a request to each app (loop time): for idle stops.
        self.last_active: dict[str, float] = {}
        # Config changes (hosts, maintenance message, create, destroy) come from the hub's
        # operations as in-process events.
        self._unsubscribe = (state.subscribe(self._on_change),
                             events.subscribe(AppCreated, self._on_config),
                             events.subscribe(ConfigChanged, self._on_config),
                             events.subscribe(AppDestroyed, self._on_config))

    def close(self) -> None:
        """Stop following the state store and the hub's events, and end every proxy's stream."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self.end_streams()
        self._peers.clear()

    # -- the table -----------------------------------------------------------------------

    def table(self) -> RouteTable:
        """The current table message (built on first use)."""
        if self._apps is None:
            self.refresh()
        assert self._apps is not None
        return RouteTable(self.version, self._apps)

    def route_control(self, control: ControlRoute | None) -> int:
        """Route the control host to the API's TCP port (None: no such route); sends the
        table if it changed. Returns its version."""
        self.control = control
        return self.refresh()

    def refresh(self) -> int:
        """Rebuild the table from config and state; send it if it changed. Returns its version.

        Runs by itself after every state change and every config change the hub publishes;
        call it after a config change written to the store directly. Covers every change made
        before it: a rebuild queued by one of those is dropped.
        """
        if self._queued is not None:
            self._queued.cancel()
            self._queued = None
        self.builds += 1
        apps, conflicts = build_route_table(self.store.list_apps(include_system=True),
                                            self.state.snapshot().apps, self.control)
        if conflicts != self._conflicts:
            self._conflicts = conflicts
            for conflict in conflicts:
                log.warning("route table: %s", conflict.describe())
        if tuple(apps) != self._apps:
            self._apps = tuple(apps)
            self.version += 1
            message = self.table()
            for peer in self._peers.values():
                peer.send(message)
        return self.version

    def _on_change(self, change: Change) -> None:
        if isinstance(change, AppStateChanged):
            self._queue_refresh()

    def _on_config(self, event: HubEvent) -> None:
        self._queue_refresh()

    def _queue_refresh(self) -> None:
        # Coalesce: one unit change emits several app changes; rebuild once per loop turn.
        if self._queued is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.refresh()
            return
        self._queued = loop.call_soon(self._queued_refresh)

    def _queued_refresh(self) -> None:
        self._queued = None
        try:
            self.refresh()
        except Exception:  # a closed store while shutting down: the next change retries
            log.exception("could not rebuild the route table")

    async def announce(self, message: TlsState) -> None:
        """Send ``message`` (given a ``version``, the next of the table's) to every proxy and
        to each that connects later; return once every connected proxy acknowledged it
        (bounded by ``confirm_timeout``: a late proxy is logged, not waited for)."""
        self.version += 1
        message = replace(message, version=self.version)
        self._announced[type(message)] = message
        for peer in self._peers.values():
            peer.send(message)
        version = self.version
        late = await self._wait_for(
            lambda: unconfirmed({p.id: p.acked for p in self._live()}, version),
            self.confirm_timeout)
        if late:
            log.warning("proxies %s did not confirm tls message %d within %.1f s",
                        ", ".join(sorted(late)), version, self.confirm_timeout)

    # -- RoutePublisher ------------------------------------------------------------------

    async def publish(self, app: str, route: Routes) -> None:
        self.state.set_routes(app, as_routes(route))
        version = self.refresh()
        late = await self._wait_for(
            lambda: unconfirmed({p.id: p.acked for p in self._live()}, version),
            self.confirm_timeout)
        if late:
            log.warning("proxies %s did not confirm route table %d of %s within %.1f s",
                        ", ".join(sorted(late)), version, app, self.confirm_timeout)

    async def drain(self, route: Route, timeout: float) -> None:
        peers = self._live()
        for peer in peers:
            peer.drained.discard(route.unit)
            peer.send(Drain(route.unit))
        try:
            late = await self._wait_for(
                lambda: undrained({p.id: p.drained for p in peers if self._is_live(p)},
                                  route.unit),
                timeout)
        finally:
            for peer in peers:
                peer.drained.discard(route.unit)
        if late:
            log.warning("proxies %s still had requests to %s in flight after %.1f s",
                        ", ".join(sorted(late)), route.unit, timeout)

    # -- what the HTTP handlers call -----------------------------------------------------

    def connect(self, proxy_id: str, alive: Callable[[], bool]) -> ProxyPeer:
        """A proxy opened its stream: it gets the current table first. A proxy that
        reconnects under the same id replaces (and ends) its older stream."""
        old = self._peers.pop(proxy_id, None)
        if old is not None:
            old.outbox.put_nowait(None)
        table = self.table()  # built before the peer joins, so it is sent once
        peer = self._peers[proxy_id] = ProxyPeer(proxy_id, alive)
        peer.send(table)
        for message in self._announced.values():
            peer.send(message)
        self._report()
        return peer

    def disconnect(self, peer: ProxyPeer) -> None:
        if self._peers.get(peer.id) is peer:
            del self._peers[peer.id]
        self._report()

    def ack(self, proxy_id: str, version: int) -> None:
        peer = self._peers.get(proxy_id)
        if peer is not None and version > peer.acked:
            peer.acked = version
            self._report()

    def report_drained(self, proxy_id: str, unit: str) -> None:
        peer = self._peers.get(proxy_id)
        if peer is not None:
            peer.drained.add(unit)
            self._report()

    def record_activity(self, apps: Collection[str]) -> None:
        now = asyncio.get_running_loop().time()
        for app in apps:
            self.last_active[app] = now

    def end_streams(self) -> None:
        """End every proxy's stream (the API is shutting down); proxies will reconnect."""
        for peer in list(self._peers.values()):
            peer.outbox.put_nowait(None)

    def peers(self) -> list[str]:
        return sorted(p.id for p in self._live())

    # -- waiting -------------------------------------------------------------------------

    def _is_live(self, peer: ProxyPeer) -> bool:
        return self._peers.get(peer.id) is peer and peer.alive()

    def _live(self) -> list[ProxyPeer]:
        return [p for p in self._peers.values() if p.alive()]

    def _report(self) -> None:
        self._reported.set()
        self._reported = asyncio.Event()

    async def _wait_for(self, pending: Callable[[], set[str]], timeout: float) -> set[str]:
        """Wait until ``pending()`` is empty or ``timeout`` passed; return what is left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while left := pending():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return left
            # A proxy that died silently is noticed by its alive() on the next look.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reported.wait(), min(remaining, _RECHECK))
        return set()
