"""One actor per app: a mailbox, one loop, one command at a time, a reply future per command.

An error in a command goes to its caller and the actor lives on. A new command drops queued
ones it makes pointless (``commands.supersedes``) and may cancel the in-flight command's
readiness wait (``commands.cancels_wait``). Stopping the actor fails every queued command
with ``Cancelled`` so nobody waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bindrop.errors import Cancelled
from bindrop.hub.commands import Command, cancels_wait, describe, supersedes

log = logging.getLogger(__name__)
T = TypeVar("T")

Handler = Callable[[Command], Awaitable[Any]]


@dataclass
class _Envelope:
    command: Command
    future: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Actor:
    """Runs ``handler(command)`` for one app, one command at a time, in arrival order."""

    def __init__(self, name: str, handler: Handler) -> None:
        self.name = name
        self._handler = handler
        self._queue: deque[_Envelope] = deque()
        self._wakeup = asyncio.Event()
        self._current: _Envelope | None = None
        self._wait_task: asyncio.Task[Any] | None = None
        self._wait_cancelled_by: Command | None = None
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"actor-{name}")

    @property
    def busy(self) -> bool:
        return self._current is not None

    @property
    def queued(self) -> list[Command]:
        return [e.command for e in self._queue]

    def submit(self, command: Command) -> asyncio.Future[Any]:
        """Queue ``command``; the returned future resolves with the handler's result or error."""
        envelope = _Envelope(command)
        if self._stopping:
            envelope.future.set_exception(Cancelled(f"{self.name}: the hub is stopping"))
            return envelope.future
        kept: deque[_Envelope] = deque()
        for queued in self._queue:
            if supersedes(command, queued.command):
                _fail(queued, Cancelled(f"{describe(queued.command)} of {self.name} was "
                                        f"superseded by {describe(command)}"))
            else:
                kept.append(queued)
        self._queue = kept
        current = self._current
        if current is not None and cancels_wait(command, current.command):
            # Cancel the wait if it runs, or make it end at once when it begins: the command
            # may still be creating its unit when the stop arrives.
            self._wait_cancelled_by = command
            if self._wait_task is not None and not self._wait_task.done():
                self._wait_task.cancel()
        self._queue.append(envelope)
        self._wakeup.set()
        return envelope.future

    async def call(self, command: Command) -> Any:
        """Submit and await the result."""
        return await self.submit(command)

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """Await a wait that a newer command may cancel (a readiness wait).

        Raises ``Cancelled`` naming the command that cancelled it; the handler decides what
        to undo. Only one such wait runs at a time per actor.
        """
        if self._wait_cancelled_by is not None:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise Cancelled(f"waiting for {self.name} was cancelled by "
                            f"{describe(self._wait_cancelled_by)}")
        task: asyncio.Task[T] = asyncio.ensure_future(awaitable)
        self._wait_task = task
        try:
            return await task
        except asyncio.CancelledError:
            by = self._wait_cancelled_by
            if by is None or not task.cancelled():
                raise  # our own task is being cancelled (hub stopping), not just the wait
            raise Cancelled(f"waiting for {self.name} was cancelled by {describe(by)}") from None
        finally:
            if not task.done():
                task.cancel()
            self._wait_task = None

    async def _run(self) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            envelope = self._queue.popleft()
            if envelope.future.done():  # the caller has gone (cancelled its await)
                continue
            self._current = envelope
            self._wait_cancelled_by = None
            try:
                result = await self._handler(envelope.command)
            except asyncio.CancelledError:
                _fail(envelope, Cancelled(f"{describe(envelope.command)} of {self.name} was "
                                          "interrupted: the hub is stopping"))
                raise
            except Exception as exc:  # the caller gets it; the actor lives on
                if not isinstance(exc, Cancelled):
                    log.debug("%s: %s failed", self.name, describe(envelope.command),
                              exc_info=True)
                _fail(envelope, exc)
            else:
                if not envelope.future.done():
                    envelope.future.set_result(result)
            finally:
                self._current = None

    async def stop(self) -> None:
        """Fail queued commands with Cancelled, interrupt the current one, end the loop."""
        self._stopping = True
        while self._queue:
            _fail(self._queue.popleft(), Cancelled(f"{self.name}: the hub is stopping"))
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _fail(envelope: _Envelope, exc: BaseException) -> None:
    if not envelope.future.done():
        envelope.future.set_exception(exc)
        # Mark retrieved: a caller that has gone must not cause "exception never retrieved".
        envelope.future.exception()
