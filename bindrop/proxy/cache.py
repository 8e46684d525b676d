"""The proxy's route cache: the lookup in use, swapped whole, and its snapshot on disk."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bindrop.client.proxywire import RouteTable
from bindrop.proxy.snapshot import load_table, save_table
from bindrop.proxy.table import Lookup, build_lookup

log = logging.getLogger(__name__)


class RouteCache:
    """Holds the current ``Lookup``. Readers take ``lookup`` once per request."""

    def __init__(self, snapshot: Path | None = None) -> None:
        self.snapshot = snapshot
        self.lookup = Lookup()
        self._swapped = asyncio.Event()

    async def swapped(self) -> None:
        """Return at the next swap."""
        await self._swapped.wait()

    def load_snapshot(self) -> bool:
        """Serve the table saved by an earlier run, if any. True when one was loaded."""
        table = load_table(self.snapshot) if self.snapshot else None
        if table is None:
            return False
        self.lookup = build_lookup(table)
        log.info("serving route table %d from %s until the hub answers", table.version,
                 self.snapshot)
        return True

    def swap(self, table: RouteTable) -> None:
        """Serve ``table`` from now on, and save it (a failed save is logged, not fatal)."""
        self.lookup = build_lookup(table)
        self._swapped.set()
        self._swapped = asyncio.Event()
        if self.snapshot is not None:
            try:
                save_table(self.snapshot, table)
            except OSError as exc:
                log.warning("could not save the route snapshot %s: %s", self.snapshot, exc)
