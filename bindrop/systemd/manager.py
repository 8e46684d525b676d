"""systemd's Manager: create, stop, restart, signal and read units.

Start, stop and restart return when their job has ended: ``None`` for "done", ``JobFailed``
(with the unit's Result and exit status when they could be read) for anything else. Every
other failure is a ``BindropError`` from ``bindrop.systemd.errors``. The Manager knows
systemd's vocabulary only: unit names and typed properties, never apps.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Sequence
from typing import Any

from bindrop.errors import BindropError, NotFound
from bindrop.systemd.bus import PROPERTIES_IFACE, SERVICE_IFACE, Bus
from bindrop.systemd.jobs import JobTracker, job_failed
from bindrop.systemd.types import (
    JobResult,
    UnitListing,
    UnitMetrics,
    UnitProperty,
    counter_or_none,
    parse_unit_listing,
)
from bindrop.systemd.variants import build_property_array, unwrap_properties

AuxUnit = tuple[str, Iterable[UnitProperty]]


class Manager:
    """Calls on ``org.freedesktop.systemd1.Manager`` over one ``Bus``.

    Start/stop/kill need root (or polkit ``manage-units``); reads work for anyone.
    """

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._jobs = JobTracker(bus)

    def close(self) -> None:
        """Stop listening; jobs still being waited for fail with ``SystemdError``."""
        self._jobs.close()

    # -- jobs ------------------------------------------------------------------------------

    async def start_transient_unit(
        self,
        name: str,
        properties: Iterable[UnitProperty],
        *,
        mode: str = "fail",
        aux: Sequence[AuxUnit] = (),
    ) -> None:
        """Create unit ``name`` with ``properties`` and start it; return when the start job
        ends.

        ``aux`` units are created but not started (a timer's service). Every Variant is built
        from its property's own signature before anything is sent (``InvalidInput`` names the
        property). Raises ``UnitExists`` if systemd still holds a unit of that name, and
        ``JobFailed`` if the start job ends other than "done" (with ``Type=exec``, a missing
        or non-executable binary fails here).
        """
        props = build_property_array(properties)
        aux_units = [[aux_name, build_property_array(aux_props)] for aux_name, aux_props in aux]
        await self._run_job(
            "start", name, "StartTransientUnit", "ssa(sv)a(sa(sv))", [name, mode, props, aux_units]
        )

    async def start_unit(self, name: str, *, mode: str = "replace") -> None:
        """Start a loaded unit and wait for the job. Raises ``JobFailed``."""
        await self._run_job("start", name, "StartUnit", "ss", [name, mode])

    async def stop_unit(self, name: str, *, mode: str = "replace") -> None:
        """Stop a unit and wait for the job. Raises ``NotFound`` if it is not loaded."""
        await self._run_job("stop", name, "StopUnit", "ss", [name, mode])

    async def restart_unit(self, name: str, *, mode: str = "replace") -> None:
        """Restart a unit (start it if inactive) and wait for the job. Raises ``JobFailed``."""
        await self._run_job("restart", name, "RestartUnit", "ss", [name, mode])

    async def _run_job(
        self, verb: str, unit: str, member: str, signature: str, body: list[Any]
    ) -> None:
        # The waiter exists before the call is sent and claims the job path from the reply in
        # wire order: JobRemoved may be dispatched before the call returns (jobs.py).
        waiter = self._jobs.expect(unit)
        try:
            await self.bus.call(
                member, signature, body, action=f"{verb} {unit}", in_order=waiter.on_reply
            )
            result = await waiter.wait()
            seen = dict(waiter.seen)
        finally:
            waiter.close()
        if result == JobResult.DONE:
            return
        if "Result" not in seen:
            seen = await self._read_quietly(unit)
        raise job_failed(verb, unit, result, seen)

    async def _read_quietly(self, unit: str) -> dict[str, Any]:
        try:
            return await self.get_unit_properties(unit)
        except BindropError:
            return {}

    # -- no job ----------------------------------------------------------------------------

    async def kill_unit(
        self, name: str, signum: int = signal.SIGTERM, *, whom: str = "all"
    ) -> None:
        """Send ``signum`` to the unit's processes (``whom``: "all", "main" or "control").

        Does not stop the unit: a SIGKILL'd service with ``Restart=on-failure`` restarts
        (systemd-lab.md); use ``stop_unit`` to stop on purpose.
        """
        await self.bus.call("KillUnit", "ssi", [name, whom, int(signum)], action=f"signal {name}")

    async def reset_failed_unit(self, name: str) -> None:
        """Forget a failed unit's failure (and let systemd collect it)."""
        await self.bus.call("ResetFailedUnit", "s", [name], action=f"reset-failed {name}")

    # -- reads -----------------------------------------------------------------------------

    async def list_units(
        self, patterns: str | Sequence[str] = "bindrop-*", *, states: Sequence[str] = ()
    ) -> list[UnitListing]:
        """Loaded units matching the glob ``patterns`` (and in one of ``states`` if given)."""
        pats = [patterns] if isinstance(patterns, str) else list(patterns)
        body = await self.bus.call(
            "ListUnitsByPatterns", "asas", [list(states), pats], action="list units"
        )
        return parse_unit_listing(body[0])

    async def get_unit_path(self, name: str) -> str:
        """The object path of a loaded unit. Raises ``NotFound`` if it is not loaded.

        Unlike reading the escaped path directly, this does not make systemd load a stub.
        """
        body = await self.bus.call("GetUnit", "s", [name], action=f"find {name}")
        path = body[0]
        if not isinstance(path, str):
            raise NotFound(f"systemd named no object for {name}")
        return path

    async def get_unit_properties(self, name: str, interface: str = "") -> dict[str, Any]:
        """All properties of a loaded unit as plain values ("" = every interface).

        Raises ``NotFound`` if the unit is not loaded.
        """
        path = await self.get_unit_path(name)
        body = await self.bus.call(
            "GetAll",
            "s",
            [interface],
            path=path,
            interface=PROPERTIES_IFACE,
            action=f"read the properties of {name}",
        )
        return unwrap_properties(body[0])

    async def read_unit_metrics(self, name: str) -> UnitMetrics:
        """Memory, tasks and CPU of a service now (systemd never pushes these).

        A counter systemd cannot provide (UINT64_MAX; e.g. CPU on hybrid cgroups) is None.
        """
        props = await self.get_unit_properties(name, SERVICE_IFACE)
        return UnitMetrics(
            memory_current=counter_or_none(props.get("MemoryCurrent")),
            tasks_current=counter_or_none(props.get("TasksCurrent")),
            cpu_usage_nsec=counter_or_none(props.get("CPUUsageNSec")),
        )
