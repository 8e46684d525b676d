"""The watcher's pure core: a view of units, fed in wire order, returning the events to deliver.

No IO and no asyncio here. ``Watcher`` calls these methods from the bus's one ordered message
handler, in exactly the order messages arrived, and delivers what they return. Ordering is
what makes a snapshot safe: a ``GetAll``/``ListUnitsByPatterns`` reply is applied at its own
place in the stream, so every signal sent after systemd built the reply is applied after it
and no reply can overwrite a newer signal (systemd-lab.md: dbus-fast dispatches a signal that
shares a socket read with a reply before ``await bus.call()`` returns, so a reply must never be
applied after the await).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from bindrop.systemd.events import Resynced, ResyncReason, UnitChanged, UnitGone, WatchEvent
from bindrop.systemd.types import (
    ActiveState,
    LoadState,
    SubState,
    UnitListing,
    UnitResult,
    UnitState,
)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(value)
    return value


def _job_id(value: Any) -> int:
    # Job is (uo): (0, "/") when there is none.
    if not isinstance(value, list | tuple) or not value:
        raise TypeError(value)
    return _int(value[0])


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


_FIELDS: Mapping[str, tuple[str, Callable[[Any], Any]]] = {
    "LoadState": ("load_state", lambda v: LoadState(_str(v))),
    "ActiveState": ("active_state", lambda v: ActiveState(_str(v))),
    "SubState": ("sub_state", lambda v: SubState(_str(v))),
    "MainPID": ("main_pid", _int),
    "Result": ("result", lambda v: UnitResult(_str(v))),
    "NRestarts": ("n_restarts", _int),
    "ExecMainStatus": ("exec_main_status", _int),
    "ExecMainCode": ("exec_main_code", _int),
    "Job": ("job_id", _job_id),
    "ActiveEnterTimestamp": ("active_enter_timestamp", _int),
    "InactiveEnterTimestamp": ("inactive_enter_timestamp", _int),
    "StateChangeTimestamp": ("state_change_timestamp", _int),
    "StateChangeTimestampMonotonic": ("state_change_monotonic", _int),
}

WATCHED_PROPERTIES = frozenset(_FIELDS)
"""The D-Bus property names a ``UnitState`` is built from."""


def build_unit_state(
    name: str, props: Mapping[str, Any], base: UnitState | None = None
) -> UnitState:
    """``base`` (or a default state) with every known property in ``props`` applied.

    ``props`` holds plain values (Variants unwrapped). Unknown names are ignored, and so is a
    value of the wrong type: a newer systemd must not crash the watcher.
    """
    changes: dict[str, Any] = {}
    for prop, value in props.items():
        field = _FIELDS.get(prop)
        if field is None:
            continue
        attr, parse = field
        try:
            changes[attr] = parse(value)
        except (TypeError, ValueError, IndexError):
            continue
    current = base if base is not None else UnitState(name=name)
    if not changes:
        return current
    fields = {**current.__dict__, **changes}
    return UnitState(**fields)


def is_ghost(props: Mapping[str, Any]) -> bool:
    """A reading of a unit that does not exist.

    Reading a unit's object path makes systemd load a stub for the name
    (``LoadState=not-found``), announce it with ``UnitNew`` and collect it again with
    ``UnitRemoved``. A loaded unit whose file vanished may also be ``not-found`` but is still
    active, so only an inactive one counts.
    """
    return props.get("LoadState") == LoadState.NOT_FOUND and props.get("ActiveState") in (
        ActiveState.INACTIVE,
        None,
    )


class UnitView:
    """Units whose names start with ``prefix``, as the signals and readings so far say.

    Every method must be called in wire order; each returns the events to deliver, in order.
    While a resync runs (``begin_resync`` .. ``end_resync``) changes are applied silently and
    ``end_resync`` returns one ``Resynced`` with the result.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.reloading = False
        self.syncing = False
        self._units: dict[str, UnitState] = {}
        # Units seen (UnitNew, or a PropertiesChanged without ActiveState) whose first full
        # reading has not arrived yet, with the properties seen so far.
        self._pending: dict[str, dict[str, Any]] = {}
        # Names a reading found not to exist: their stub's UnitNew must not trigger another
        # reading, or reading a stub would load a stub forever.
        self._ghosts: set[str] = set()

    @property
    def units(self) -> Mapping[str, UnitState]:
        return MappingProxyType(self._units)

    def matches(self, name: str) -> bool:
        return name.startswith(self.prefix)

    def is_pending(self, name: str) -> bool:
        return name in self._pending

    # -- signals ---------------------------------------------------------------------------

    def unit_new(self, name: str) -> bool:
        """A ``UnitNew``. True if the unit should be read (``GetAll``) now."""
        if not self.matches(name) or self.reloading:
            # Inside a reload window units are re-announced; the re-read after it covers them.
            return False
        if name in self._units or name in self._pending or name in self._ghosts:
            return False
        self._pending[name] = {}
        return True

    def unit_removed(self, name: str) -> list[WatchEvent]:
        """A ``UnitRemoved``."""
        if not self.matches(name):
            return []
        if self.reloading:
            # daemon-reload/-reexec emit UnitRemoved (+ UnitNew) for units that keep running
            # (systemd-lab.md); the re-read after Reloading(false) finds the truly gone ones.
            return []
        self._ghosts.discard(name)
        self._pending.pop(name, None)
        last = self._units.pop(name, None)
        if last is None or self.syncing:
            return []
        return [UnitGone(last)]

    def properties_changed(
        self, name: str, props: Mapping[str, Any]
    ) -> tuple[list[WatchEvent], bool]:
        """A ``PropertiesChanged`` (plain values). Returns (events, whether to read the unit).

        systemd sends the whole set of changing properties of one interface per signal, so a
        Unit-interface signal is enough to know a new unit's state; Service-interface values
        seen before it are kept and merged in.
        """
        if not self.matches(name):
            return [], False
        current = self._units.get(name)
        if current is not None:
            return self._replace(current, build_unit_state(name, props, current)), False
        self._ghosts.discard(name)
        need_read = name not in self._pending
        partial = self._pending.setdefault(name, {})
        partial.update(props)
        if "ActiveState" not in partial:
            return [], need_read
        del self._pending[name]
        return self._add(build_unit_state(name, partial)), need_read

    def reloading_changed(self, active: bool) -> bool:
        """A ``Reloading`` signal. True when the window closed and all units must be re-read."""
        self.reloading = active
        return not active

    # -- readings (replies), applied at their place in the stream ---------------------------

    def unit_read(self, name: str, props: Mapping[str, Any]) -> list[WatchEvent]:
        """A ``GetAll`` reply for one unit (plain values)."""
        if not self.matches(name):
            return []
        partial = self._pending.pop(name, None) or {}
        if is_ghost(props):
            self._ghosts.add(name)
            last = self._units.pop(name, None)
            if last is None or self.syncing:
                return []
            return [UnitGone(last)]
        self._ghosts.discard(name)
        current = self._units.get(name)
        if current is not None:
            stamp = props.get("StateChangeTimestampMonotonic")
            if isinstance(stamp, int) and stamp < current.state_change_monotonic:
                # Defence in depth: replies are applied in wire order, so this cannot happen;
                # if it ever did, an older reading must not undo a newer signal.
                return []
            return self._replace(current, build_unit_state(name, props, current))
        return self._add(build_unit_state(name, {**partial, **props}))

    def read_failed(self, name: str) -> None:
        """A ``GetAll`` for ``name`` failed: forget that it was pending."""
        self._pending.pop(name, None)

    def listing(self, rows: Iterable[UnitListing]) -> tuple[list[WatchEvent], list[str]]:
        """A ``ListUnitsByPatterns`` reply. Returns (events, names to read).

        Units the listing lacks are gone at this point of the stream.
        """
        listed: list[str] = []
        for row in rows:
            if not self.matches(row.name):
                continue
            if row.load_state == LoadState.NOT_FOUND and row.active_state == ActiveState.INACTIVE:
                continue
            listed.append(row.name)
        keep = set(listed)
        events: list[WatchEvent] = []
        for name in [n for n in self._units if n not in keep]:
            last = self._units.pop(name)
            if not self.syncing:
                events.append(UnitGone(last))
        for name in [n for n in self._pending if n not in keep]:
            del self._pending[name]
        for name in listed:
            if name not in self._units:
                self._pending.setdefault(name, {})
        return events, listed

    # -- resync ----------------------------------------------------------------------------

    def begin_resync(self, *, forget_reload: bool) -> None:
        """Start applying changes silently. ``forget_reload`` after a new connection, which
        may have missed a ``Reloading(false)``."""
        self.syncing = True
        if forget_reload:
            self.reloading = False

    def end_resync(self, reason: ResyncReason) -> Resynced:
        self.syncing = False
        return Resynced(MappingProxyType(dict(self._units)), reason)

    # -- helpers ---------------------------------------------------------------------------

    def _add(self, state: UnitState) -> list[WatchEvent]:
        self._units[state.name] = state
        return [] if self.syncing else [UnitChanged(None, state)]

    def _replace(self, old: UnitState, new: UnitState) -> list[WatchEvent]:
        if new == old:
            return []
        self._units[new.name] = new
        return [] if self.syncing else [UnitChanged(old, new)]
