"""One connection to the system bus: ordered dispatch, bounded calls, timeouts, reconnect.

systemd-lab.md (checked on systemd 252 with dbus-fast 5.2) shapes this module:

- dbus-fast dispatches the signals that arrive in the same socket read as a method reply
  *before* ``await bus.call()`` returns. So a call may carry an ``in_order`` hook, run by this
  connection's one message handler at the reply's own place in the stream, before any later
  message. The serial is assigned before sending, so the handler can know the reply.
- A message handler sees every message, replies included, and must return None for those it
  does not consume, or the pending ``call()`` never resolves. Ours never consumes anything.
- ``bus.call()`` returns error messages instead of raising and has no timeout: every call here
  is wrapped in a timeout, and error replies are translated by ``bindrop.systemd.errors``.
- 400 concurrent calls killed a dbus-fast connection (EAGAIN on send is fatal) and dbus-daemon
  caps pending replies at 128 per connection: calls in flight are bounded by a semaphore.
- The connection is re-made when lost; match rules and ``Subscribe`` are per connection and
  are added again. Ready listeners hear about every new connection and about systemd
  re-appearing on the bus (``NameOwnerChanged``), so they can re-read what they track.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, Self

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

from bindrop.errors import BindropError, BusUnavailable, SystemdError
from bindrop.settings import Settings
from bindrop.systemd.errors import error_from_exception, error_from_reply
from bindrop.systemd.events import ResyncReason
from bindrop.systemd.paths import MANAGER_PATH, UNIT_PATH_PREFIX

_LOGGER = logging.getLogger(__name__)

SYSTEMD = "org.freedesktop.systemd1"
MANAGER_IFACE = "org.freedesktop.systemd1.Manager"
UNIT_IFACE = "org.freedesktop.systemd1.Unit"
SERVICE_IFACE = "org.freedesktop.systemd1.Service"
PROPERTIES_IFACE = "org.freedesktop.DBus.Properties"
DBUS = "org.freedesktop.DBus"
DBUS_PATH = "/org/freedesktop/DBus"

# Three match rules, whatever the number of units (dbus-daemon caps them at 512 a connection):
# Manager signals (JobRemoved, UnitNew, UnitRemoved, Reloading), every unit's
# PropertiesChanged (filtered on the name prefix client-side), and systemd (re)appearing.
MATCH_RULES = (
    f"type='signal',sender='{SYSTEMD}',path='{MANAGER_PATH}',interface='{MANAGER_IFACE}'",
    f"type='signal',sender='{SYSTEMD}',interface='{PROPERTIES_IFACE}',"
    f"member='PropertiesChanged',path_namespace='{UNIT_PATH_PREFIX.rstrip('/')}'",
    f"type='signal',sender='{DBUS}',path='{DBUS_PATH}',interface='{DBUS}',"
    f"member='NameOwnerChanged',arg0='{SYSTEMD}'",
)

ReplyHook = Callable[[list[Any]], None]
SignalListener = Callable[[Message], None]
ReadyListener = Callable[[ResyncReason], None]
LostListener = Callable[[BindropError], None]
Unsubscribe = Callable[[], None]

DEFAULT_MAX_IN_FLIGHT = 16
DEFAULT_CALL_TIMEOUT = 25.0


class _Connection:
    """One dbus-fast connection and the reply hooks of calls made on it (serials are per
    connection, so hooks cannot outlive it)."""

    def __init__(self, raw: MessageBus, owner: Bus) -> None:
        self.raw = raw
        self.hooks: dict[int, ReplyHook] = {}
        # systemd's unique name on this connection; signals from anyone else are dropped.
        self.systemd_owner: str | None = None
        self._owner = owner
        # One task owns dbus-fast's disconnect future: awaiting that future directly from a
        # task that gets cancelled would cancel the future itself.
        self.gone: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            _wait_gone(raw), name="bindrop-bus-gone"
        )

    async def disconnect(self) -> None:
        self.raw.disconnect()
        await asyncio.wait([self.gone], timeout=2)

    def on_message(self, msg: Message) -> None:
        # Runs for every message in wire order. Returns None always: a truthy return would
        # mark a reply as handled and its call() would never resolve.
        kind = msg.message_type
        if kind is MessageType.METHOD_RETURN:
            hook = self.hooks.pop(msg.reply_serial, None)
            if hook is not None:
                try:
                    hook(msg.body)
                except Exception:
                    _LOGGER.exception("a reply hook failed")
        elif kind is MessageType.ERROR:
            self.hooks.pop(msg.reply_serial, None)
        elif kind is MessageType.SIGNAL:
            self._owner._dispatch_signal(self, msg)
        return None


class Bus:
    """A self-healing connection to the system bus (or ``address``), subscribed to systemd.

    Use ``await Bus.connect(address)`` or ``async with Bus(address) as bus``. The first
    connection must succeed (``BusUnavailable`` otherwise); later losses are repaired in the
    background, and calls made meanwhile wait for the new connection within their timeout.

    Every connection adds the match rules in ``MATCH_RULES`` and calls ``Manager.Subscribe``,
    so systemd pushes unit changes and job signals to it. One handler dispatches every
    message in wire order to signal listeners and reply hooks; listeners run synchronously
    and must not block.
    """

    def __init__(
        self,
        address: str,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        connect_timeout: float = 10.0,
        retry_delays: tuple[float, float] = (0.1, 5.0),
    ) -> None:
        self.address = address
        self.call_timeout = call_timeout
        self._connect_timeout = connect_timeout
        self._retry_delays = retry_delays
        self._slots = asyncio.Semaphore(max_in_flight)
        self._conn: _Connection | None = None
        self._ready = asyncio.Event()
        self._closed = False
        self._supervisor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._signal_listeners: list[SignalListener] = []
        self._ready_listeners: list[ReadyListener] = []
        self._lost_listeners: list[LostListener] = []

    @classmethod
    async def connect(cls, address: str, **options: Any) -> Bus:
        """A connected ``Bus``. Raises ``BusUnavailable`` if the bus cannot be reached."""
        bus = cls(address, **options)
        await bus.open()
        return bus

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Bus:
        """A ``Bus`` (not yet open) for ``settings.bus_address``."""
        return cls(settings.bus_address, **options)

    async def open(self) -> None:
        """Connect, add the match rules and subscribe. Raises ``BusUnavailable``."""
        if self._supervisor is not None or self._closed:
            raise RuntimeError("a Bus opens once")
        conn = await self._establish()
        self._conn = conn
        self._ready.set()
        self._supervisor = asyncio.create_task(self._supervise(conn), name="bindrop-bus")

    async def close(self) -> None:
        """Disconnect for good. Pending and later calls fail with ``BusUnavailable``."""
        if self._closed:
            return
        self._closed = True
        self._ready.set()  # wake calls waiting for a connection; they see _closed
        tasks = [t for t in (self._supervisor, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.disconnect()
        self._notify_lost(BusUnavailable("the bus connection was closed"))

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.raw.connected

    @property
    def unique_name(self) -> str | None:
        """This connection's unique bus name (changes on reconnect), or None while down."""
        return self._conn.raw.unique_name if self._conn is not None else None

    # -- listeners -------------------------------------------------------------------------

    def add_signal_listener(self, listener: SignalListener) -> Unsubscribe:
        """Call ``listener(msg)`` for every signal, in wire order, from the message handler."""
        self._signal_listeners.append(listener)
        return _remover(self._signal_listeners, listener)

    def add_ready_listener(self, listener: ReadyListener) -> Unsubscribe:
        """Call ``listener(reason)`` when a new connection is subscribed (``RECONNECT``) or
        systemd re-appeared on the bus and was subscribed again (``SYSTEMD_RESTART``):
        anything tracked from signals must be re-read."""
        self._ready_listeners.append(listener)
        return _remover(self._ready_listeners, listener)

    def add_lost_listener(self, listener: LostListener) -> Unsubscribe:
        """Call ``listener(error)`` when the connection is lost or closed."""
        self._lost_listeners.append(listener)
        return _remover(self._lost_listeners, listener)

    # -- calls -----------------------------------------------------------------------------

    async def call(
        self,
        member: str,
        signature: str = "",
        body: Sequence[Any] = (),
        *,
        path: str = MANAGER_PATH,
        interface: str = MANAGER_IFACE,
        destination: str = SYSTEMD,
        action: str | None = None,
        in_order: ReplyHook | None = None,
        timeout: float | None = None,
    ) -> list[Any]:
        """Call a method and return the reply's body.

        ``in_order(body)`` runs from the message handler when the reply arrives, before any
        later message is dispatched (and before this coroutine resumes); use it for anything
        that must be ordered against signals. It does not run for an error reply.

        Raises the translated ``BindropError`` for an error reply, ``BusUnavailable`` when no
        connection is up within the timeout, and ``SystemdError`` when the reply does not come
        within ``timeout`` (default ``call_timeout``). ``action`` completes "cannot ..." in
        error messages.
        """
        what = action or f"call {interface.rsplit('.', 1)[-1]}.{member}"
        limit = self.call_timeout if timeout is None else timeout
        waited_for_connection = False
        try:
            async with asyncio.timeout(limit):
                async with self._slots:
                    if self._conn is None:
                        waited_for_connection = True
                    conn = await self._wait_ready(what)
                    waited_for_connection = False
                    msg = Message(
                        destination=destination,
                        path=path,
                        interface=interface,
                        member=member,
                        signature=signature,
                        body=list(body),
                    )
                    reply = await self._send(conn, msg, what, in_order)
        except TimeoutError:
            if waited_for_connection:
                raise BusUnavailable(
                    f"cannot {what}: no connection to the system bus at {self.address} "
                    f"within {limit:g}s"
                ) from None
            raise SystemdError(
                f"cannot {what}: systemd did not answer within {limit:g}s (is it busy or hung?)"
            ) from None
        if reply.message_type is MessageType.ERROR:
            raise error_from_reply(reply, action=what)
        return list(reply.body)

    async def _wait_ready(self, what: str) -> _Connection:
        while True:
            if self._closed:
                raise BusUnavailable(f"cannot {what}: the bus connection is closed")
            conn = self._conn
            if conn is not None:
                return conn
            self._ready.clear()
            await self._ready.wait()

    async def _send(
        self, conn: _Connection, msg: Message, what: str, in_order: ReplyHook | None
    ) -> Message:
        if not conn.raw.connected:
            # dbus-fast would queue it on a dead socket and never answer.
            raise BusUnavailable(f"cannot {what}: the system bus connection is down")
        # The serial is assigned before sending so the hook is in place before any reply.
        msg.serial = conn.raw.next_serial()
        if in_order is not None:
            conn.hooks[msg.serial] = in_order
        try:
            reply = await conn.raw.call(msg)
        except Exception as exc:
            raise error_from_exception(exc, action=what) from exc
        finally:
            conn.hooks.pop(msg.serial, None)
        if reply is None:
            raise BusUnavailable(f"cannot {what}: no reply on the system bus")
        return reply

    # -- connection ------------------------------------------------------------------------

    async def _establish(self) -> _Connection:
        what = f"connect to the system bus at {self.address}"
        try:
            raw = MessageBus(bus_address=self.address, bus_type=BusType.SYSTEM)
            async with asyncio.timeout(self._connect_timeout):
                await raw.connect()
        except Exception as exc:
            raise error_from_exception(exc, action=what) from exc
        conn = _Connection(raw, self)
        raw.add_message_handler(conn.on_message)
        try:
            async with asyncio.timeout(self._connect_timeout):
                for rule in MATCH_RULES:
                    reply = await self._send(
                        conn,
                        Message(
                            destination=DBUS,
                            path=DBUS_PATH,
                            interface=DBUS,
                            member="AddMatch",
                            signature="s",
                            body=[rule],
                        ),
                        "add a D-Bus match rule",
                        None,
                    )
                    if reply.message_type is MessageType.ERROR:
                        raise error_from_reply(reply, action="add a D-Bus match rule")
                await self._read_systemd_owner(conn)
                await self._subscribe(conn)
        except BaseException as exc:
            await conn.disconnect()
            if isinstance(exc, TimeoutError):
                raise BusUnavailable(f"cannot {what}: the bus did not answer") from None
            raise
        return conn

    async def _read_systemd_owner(self, conn: _Connection) -> None:
        def on_reply(body: list[Any]) -> None:
            # In wire order: a NameOwnerChanged behind this reply must win.
            conn.systemd_owner = body[0] if body and isinstance(body[0], str) else None

        msg = Message(
            destination=DBUS,
            path=DBUS_PATH,
            interface=DBUS,
            member="GetNameOwner",
            signature="s",
            body=[SYSTEMD],
        )
        # An error reply (NameHasNoOwner) leaves it None until systemd appears.
        await self._send(conn, msg, "find systemd on the bus", on_reply)

    async def _subscribe(self, conn: _Connection) -> bool:
        """``Manager.Subscribe``; False if systemd is not on the bus yet (a later
        ``NameOwnerChanged`` subscribes then)."""
        msg = Message(
            destination=SYSTEMD, path=MANAGER_PATH, interface=MANAGER_IFACE, member="Subscribe"
        )
        try:
            async with asyncio.timeout(self._connect_timeout):
                reply = await self._send(conn, msg, "subscribe to systemd", None)
        except TimeoutError:
            _LOGGER.warning("systemd did not answer Subscribe; waiting for it to appear")
            return False
        if reply.message_type is MessageType.ERROR:
            if reply.error_name == "org.freedesktop.systemd1.AlreadySubscribed":
                return True  # a re-executed systemd keeps its subscribers
            error = error_from_reply(reply, action="subscribe to systemd")
            if isinstance(error, BusUnavailable):
                _LOGGER.warning("%s; waiting for systemd to appear on the bus", error.message)
                return False
            raise error
        return True

    async def _supervise(self, conn: _Connection) -> None:
        while True:
            await asyncio.wait([conn.gone])
            if self._closed:
                return
            _LOGGER.warning("lost the system bus connection at %s; reconnecting", self.address)
            self._conn = None
            self._ready.clear()
            self._notify_lost(
                BusUnavailable(f"lost the connection to the system bus at {self.address}")
            )
            conn = await self._reconnect()
            self._conn = conn
            self._ready.set()
            _LOGGER.info("reconnected to the system bus at %s", self.address)
            self._notify_ready(ResyncReason.RECONNECT)

    async def _reconnect(self) -> _Connection:
        delay, longest = self._retry_delays
        while True:
            await asyncio.sleep(delay)
            try:
                return await self._establish()
            except BindropError as exc:
                _LOGGER.debug("reconnect failed: %s", exc.message)
            delay = min(delay * 2, longest)

    def _dispatch_signal(self, conn: _Connection, msg: Message) -> None:
        if msg.sender == DBUS:
            if msg.member == "NameOwnerChanged" and msg.body and msg.body[0] == SYSTEMD:
                conn.systemd_owner = msg.body[2] or None
                if conn.systemd_owner:
                    # systemd (re)joined the bus: after daemon-reexec it keeps its
                    # subscribers, a new instance would not, and signals may have been missed.
                    self._spawn(self._systemd_appeared(conn))
            return
        if msg.sender is None or msg.sender != conn.systemd_owner:
            # Match rules filter broadcasts by sender, but a signal addressed to us directly
            # bypasses them, and any local user may send one: only systemd is believed.
            return
        for listener in tuple(self._signal_listeners):
            try:
                listener(msg)
            except Exception:
                _LOGGER.exception("a signal listener failed")

    async def _systemd_appeared(self, conn: _Connection) -> None:
        try:
            await self._subscribe(conn)
        except BindropError as exc:
            _LOGGER.warning("could not subscribe to systemd again: %s", exc.message)
            return
        if conn is self._conn:
            self._notify_ready(ResyncReason.SYSTEMD_RESTART)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notify_ready(self, reason: ResyncReason) -> None:
        for listener in tuple(self._ready_listeners):
            try:
                listener(reason)
            except Exception:
                _LOGGER.exception("a ready listener failed")

    def _notify_lost(self, error: BindropError) -> None:
        for listener in tuple(self._lost_listeners):
            try:
                listener(error)
            except Exception:
                _LOGGER.exception("a lost listener failed")


async def _wait_gone(raw: MessageBus) -> None:
    # A connection lost with an error ends the same way as a clean disconnect here.
    with contextlib.suppress(Exception):
        await raw.wait_for_disconnect()  # type: ignore[no-untyped-call]


def _remover(listeners: list[Any], listener: Any) -> Unsubscribe:
    def remove() -> None:
        with contextlib.suppress(ValueError):
            listeners.remove(listener)

    return remove
