"""The last lines an app unit wrote, from journald, for messages a person reads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from bindrop.units.cron import CRON_UNIT_PREFIX
from bindrop.units.names import APP_UNIT_PREFIX, APP_UNIT_SUFFIX


class JournalReader:
    """Runs ``journalctl``; ``prefix`` runs it elsewhere (``nsenter …`` into a machine)."""

    def __init__(self, prefix: Sequence[str] = ()) -> None:
        self.prefix = list(prefix)

    async def tail(self, unit: str, lines: int = 20, timeout: float = 5.0) -> list[str]:
        """Up to ``lines`` last lines of ``unit``; an empty list when they cannot be read."""
        return await self._tail(["-u", unit], lines, timeout)

    async def tail_app(self, app: str, lines: int = 20, timeout: float = 5.0) -> list[str]:
        """The app's own output over all its releases (``LogExtraFields=BINDROP_APP=``), of
        its own units only (``unit_of_app``)."""
        raw = await self._tail(["-o", "json", "--output-fields=MESSAGE,_SYSTEMD_UNIT",
                                f"BINDROP_APP={app}"], lines, timeout)
        out = []
        for line in raw:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            message = entry.get("MESSAGE") if isinstance(entry, dict) else None
            if isinstance(message, str) and unit_of_app(entry.get("_SYSTEMD_UNIT"), app):
                out.append(message)
        return out

    async def _tail(self, match: list[str], lines: int, timeout: float) -> list[str]:
        argv = [*self.prefix, "journalctl", "--no-pager", "-o", "cat", "-n", str(lines), *match]
        # a later "-o" in ``match`` wins
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
                stdin=asyncio.subprocess.DEVNULL)
        except OSError:
            return []
        try:
            async with asyncio.timeout(timeout):
                out, _ = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return []
        text = out.decode("utf-8", "replace").strip()
        return text.splitlines()[-lines:] if text and not text.startswith("-- No entries") else []


def unit_of_app(unit: object, app: str) -> bool:
    """Whether ``unit`` (an entry's ``_SYSTEMD_UNIT``, which journald sets itself) is one of
    ``app``'s: an instance, its release command or a run (``bindrop-app-<app>-<token>``, no
    ``-`` in the token, so not the app ``<app>-x``), or a cron job. Pure.

    ``BINDROP_APP=`` alone is no proof: any process may send the journal that field (its
    native protocol), so another app could put lines into this app's logs."""
    if not isinstance(unit, str):
        return False
    stem = f"{APP_UNIT_PREFIX}{app}-"
    if unit.startswith(stem) and unit.endswith(APP_UNIT_SUFFIX):
        return "-" not in unit[len(stem):-len(APP_UNIT_SUFFIX)]
    return unit.startswith(f"{CRON_UNIT_PREFIX}{app}.")
