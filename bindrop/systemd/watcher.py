"""Watch units by name prefix: subscribe first, then read, then deliver every change in order.

The ``Bus`` is subscribed (match rules + ``Manager.Subscribe``) before the watcher reads
anything, and the watcher's listener is in place before its snapshot is asked for, so no change
falls between the snapshot and the stream. Snapshot replies are applied by ``in_order`` hooks
at their own place in the message stream (see ``view.py`` for why that is enough).

Re-reads happen:
- after a new bus connection, or systemd re-appearing on the bus: a full resync, delivered as
  one ``Resynced``;
- after a ``Reloading(false)``: the units are listed and read again, and real differences are
  delivered as ``UnitChanged``/``UnitGone`` (removals inside the reload window are ignored,
  systemd-lab.md);
- after ``UnitNew`` (or a first ``PropertiesChanged``) of a unit: that unit alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from types import MappingProxyType
from typing import Any, Self

from dbus_fast import Message

from bindrop.errors import BindropError
from bindrop.systemd.bus import MANAGER_IFACE, PROPERTIES_IFACE, Bus, Unsubscribe
from bindrop.systemd.events import Resynced, ResyncReason, UnitChanged, UnitGone, WatchEvent
from bindrop.systemd.paths import unit_name_from_path, unit_path, unit_path_prefix
from bindrop.systemd.types import UnitState, parse_unit_listing
from bindrop.systemd.variants import unwrap
from bindrop.systemd.view import WATCHED_PROPERTIES, UnitView

_LOGGER = logging.getLogger(__name__)

DEFAULT_PREFIX = "bindrop-"
EventCallback = Callable[[WatchEvent], None]
_RETRY_DELAY = 1.0


def _watched(props: Mapping[str, Any]) -> dict[str, Any]:
    return {name: unwrap(value) for name, value in props.items() if name in WATCHED_PROPERTIES}


class Watcher:
    """The live state of every unit whose name starts with ``prefix``, and its changes.

    ``await watcher.start()`` returns once the first snapshot is in (``units`` is then
    complete). Subscribers get ``UnitChanged``/``UnitGone``/``Resynced`` events synchronously,
    in wire order; ``events()`` wraps that in an async iterator. ``get(name)`` is always at
    least as new as the last event delivered.
    """

    def __init__(self, bus: Bus, *, prefix: str = DEFAULT_PREFIX) -> None:
        if any(c in prefix for c in "*?[]\\"):
            raise ValueError(f"a watch prefix is a plain name prefix, not a glob: {prefix!r}")
        self.bus = bus
        self.prefix = prefix
        self._view = UnitView(prefix)
        self._path_prefix = unit_path_prefix(prefix)
        self._callbacks: list[EventCallback] = []
        self._streams: set[EventStream] = set()
        self._listeners: list[Unsubscribe] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None
        self._wanted_resync: ResyncReason | None = None
        self._wanted_reread = False
        self._synced = False
        self._closed = False

    async def start(self) -> None:
        """Listen, then take the first snapshot. Raises its ``BindropError``."""
        if self._listeners:
            raise RuntimeError("a Watcher starts once")
        self._listeners = [
            self.bus.add_signal_listener(self._on_signal),
            self.bus.add_ready_listener(self._on_ready),
        ]
        try:
            await self._refresh(ResyncReason.START)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop watching; open event streams end."""
        self._closed = True
        for unsubscribe in self._listeners:
            unsubscribe()
        tasks = [t for t in (self._refresher, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for stream in tuple(self._streams):
            stream.close()
        self._callbacks.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- reading ---------------------------------------------------------------------------

    @property
    def units(self) -> Mapping[str, UnitState]:
        """The current view (read-only, live)."""
        return self._view.units

    def get(self, name: str) -> UnitState | None:
        return self._view.units.get(name)

    def snapshot(self) -> Mapping[str, UnitState]:
        """A frozen copy of the current view."""
        return MappingProxyType(dict(self._view.units))

    async def wait_synced(self) -> None:
        """Return once no re-read (resync, or re-read after a reload) is running or wanted.

        Only re-reads already asked for count: to wait for one caused by something systemd
        did, first make any call on the same bus (its reply comes after that signal).
        """
        while self._refresher is not None and not self._refresher.done():
            await asyncio.wait([self._refresher])

    # -- subscribing -----------------------------------------------------------------------

    def subscribe(self, callback: EventCallback) -> Unsubscribe:
        """Call ``callback(event)`` for every event from now on, in order, synchronously from
        the bus's message handler (so it must not block or raise)."""
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return unsubscribe

    def events(self) -> EventStream:
        """An async iterator of events, starting with a ``Resynced`` of the current view.

        Use as ``async with watcher.events() as events: async for event in events: ...``;
        closing it unsubscribes. Unbounded: a consumer that stops reading keeps events in
        memory until it closes the stream.
        """
        stream = EventStream()
        if self._synced:
            stream.push(Resynced(self.snapshot(), ResyncReason.START))
        unsubscribe = self.subscribe(stream.push)

        def detach() -> None:
            unsubscribe()
            self._streams.discard(stream)

        stream.attach(detach)
        self._streams.add(stream)
        return stream

    # -- signals (called in wire order) ----------------------------------------------------

    def _on_signal(self, msg: Message) -> None:
        member = msg.member
        if msg.interface == PROPERTIES_IFACE:
            path = msg.path or ""
            if member != "PropertiesChanged" or not path.startswith(self._path_prefix):
                return
            name = unit_name_from_path(path)
            if name is None:
                return
            events, need_read = self._view.properties_changed(name, _watched(msg.body[1]))
            self._deliver(events)
            if need_read:
                self._spawn(self._read_unit(name))
        elif msg.interface == MANAGER_IFACE:
            if member == "UnitRemoved":
                self._deliver(self._view.unit_removed(msg.body[0]))
            elif member == "UnitNew":
                if self._view.unit_new(msg.body[0]):
                    self._spawn(self._read_unit(msg.body[0]))
            elif member == "Reloading" and self._view.reloading_changed(bool(msg.body[0])):
                self._request(reread=True)

    def _on_ready(self, reason: ResyncReason) -> None:
        self._request(resync=reason)

    def _deliver(self, events: list[WatchEvent]) -> None:
        for event in events:
            if isinstance(event, Resynced):
                self._synced = True
            for callback in tuple(self._callbacks):
                try:
                    callback(event)
                except Exception:
                    _LOGGER.exception("a watch subscriber failed")

    # -- re-reading ------------------------------------------------------------------------

    def _request(self, *, resync: ResyncReason | None = None, reread: bool = False) -> None:
        if self._closed:
            return
        if resync is not None and self._wanted_resync is None:
            self._wanted_resync = resync
        self._wanted_reread = self._wanted_reread or reread
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        while self._wanted_resync is not None or self._wanted_reread:
            # A resync re-reads everything, so it also satisfies a wanted re-read.
            kind, self._wanted_resync, self._wanted_reread = self._wanted_resync, None, False
            try:
                await self._refresh(kind)
            except BindropError as exc:
                if not self.bus.connected:
                    # The next connection's ready listener asks again.
                    _LOGGER.info("re-read interrupted: %s", exc.message)
                    continue
                _LOGGER.warning("re-reading units failed, retrying: %s", exc.message)
                await asyncio.sleep(_RETRY_DELAY)
                if kind is not None:
                    self._wanted_resync = self._wanted_resync or kind
                else:
                    self._wanted_reread = True

    async def _refresh(self, resync: ResyncReason | None) -> None:
        """List and read every unit; with ``resync``, silently and ending in ``Resynced``."""
        if resync is not None:
            self._view.begin_resync(forget_reload=resync is ResyncReason.RECONNECT)
        listed: list[str] = []

        def on_listing(body: list[Any]) -> None:
            events, names = self._view.listing(parse_unit_listing(body[0]))
            self._deliver(events)
            listed.extend(names)

        await self.bus.call(
            "ListUnitsByPatterns",
            "asas",
            [[], [self.prefix + "*"]],
            action=f"list the {self.prefix}* units",
            in_order=on_listing,
        )
        results = await asyncio.gather(
            *(self._read_unit(name, quiet=False) for name in listed), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        if resync is not None:
            self._deliver([self._view.end_resync(resync)])

    async def _read_unit(self, name: str, *, quiet: bool = True) -> None:
        def on_reply(body: list[Any]) -> None:
            self._deliver(self._view.unit_read(name, _watched(body[0])))

        try:
            # GetAll on the path, not GetUnit first: one round trip, and a stub loaded for a
            # vanished unit is recognised (view.is_ghost) and not read again.
            await self.bus.call(
                "GetAll",
                "s",
                [""],
                path=unit_path(name),
                interface=PROPERTIES_IFACE,
                action=f"read {name}",
                in_order=on_reply,
            )
        except BindropError as exc:
            self._view.read_failed(name)
            if not quiet:
                raise
            _LOGGER.info("could not read %s: %s", name, exc.message)

    def _spawn(self, coro: Any) -> None:
        if self._closed:
            coro.close()
            return
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class EventStream:
    """Watch events as an async iterator; ends when closed (or when its watcher closes)."""

    _END = object()

    def __init__(self) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._unsubscribe: Unsubscribe | None = None
        self._closed = False

    def attach(self, unsubscribe: Unsubscribe) -> None:
        self._unsubscribe = unsubscribe

    def push(self, event: WatchEvent) -> None:
        if not self._closed:
            self._queue.put_nowait(event)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._queue.put_nowait(self._END)

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self

    async def __anext__(self) -> WatchEvent:
        item = await self._queue.get()
        if item is self._END:
            self._queue.put_nowait(self._END)  # stay ended
            raise StopAsyncIteration
        assert isinstance(item, UnitChanged | UnitGone | Resynced)
        return item

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
