"""The last lines an app unit wrote, from journald, for messages a person reads."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence


class JournalReader:
    """Runs ``journalctl``; ``prefix`` runs it elsewhere (``nsenter …`` into a machine)."""

    def __init__(self, prefix: Sequence[str] = ()) -> None:
        self.prefix = list(prefix)

    async def tail(self, unit: str, lines: int = 20, timeout: float = 5.0) -> list[str]:
        """Up to ``lines`` last lines of ``unit``; an empty list when they cannot be read."""
        return await self._tail(["-u", unit], lines, timeout)

    async def tail_app(self, app: str, lines: int = 20, timeout: float = 5.0) -> list[str]:
        """The app's own output over all its releases (``LogExtraFields=BINDROP_APP=``)."""
        return await self._tail([f"BINDROP_APP={app}"], lines, timeout)

    async def _tail(self, match: list[str], lines: int, timeout: float) -> list[str]:
        argv = [*self.prefix, "journalctl", "--no-pager", "-o", "cat", "-n", str(lines), *match]
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
