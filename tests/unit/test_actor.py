"""The actor: one command at a time, errors to the caller, supersede, cancel a wait, stop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bindrop.errors import Cancelled, Conflict
from bindrop.hub.actor import Actor
from bindrop.hub.commands import Check, Command, Deploy, Restart, Start, Stop

# The release number the fake lifecycle takes as a readiness wait that never ends.
WAITS = 99


class Recorder:
    """A handler that records what ran, and can be held inside a command."""

    def __init__(self) -> None:
        self.ran: list[Command] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.actor: Actor | None = None
        self.entered = asyncio.Event()
        self.inside = 0
        self.most_inside = 0

    async def __call__(self, command: Command) -> Any:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            return await self._run(command)
        finally:
            self.inside -= 1

    async def _run(self, command: Command) -> Any:
        self.ran.append(command)
        self.entered.set()
        if isinstance(command, Check):
            raise Conflict("check failed")
        if isinstance(command, Deploy) and command.release == WAITS:
            assert self.actor is not None
            await self.actor.wait(asyncio.sleep(3600))  # a readiness wait that never ends
        await self.gate.wait()
        return type(command).__name__


async def _actor() -> tuple[Actor, Recorder]:
    rec = Recorder()
    actor = Actor("app", rec)
    rec.actor = actor
    return actor, rec


async def test_commands_run_one_at_a_time_in_order() -> None:
    actor, rec = await _actor()
    results = await asyncio.gather(actor.call(Deploy(2)), actor.call(Stop()))
    assert results == ["Deploy", "Stop"]
    assert rec.ran == [Deploy(2), Stop()]
    assert rec.most_inside == 1
    await actor.stop()


async def test_error_goes_to_the_caller_and_the_actor_lives_on() -> None:
    actor, _ = await _actor()
    with pytest.raises(Conflict, match="check failed"):
        await actor.call(Check())
    assert await actor.call(Start()) == "Start"
    await actor.stop()


async def test_stop_supersedes_queued_restart() -> None:
    actor, rec = await _actor()
    rec.gate.clear()
    first = actor.submit(Start())
    await rec.entered.wait()
    restart = actor.submit(Restart())
    stop = actor.submit(Stop())
    rec.gate.set()
    assert await first == "Start"
    with pytest.raises(Cancelled, match="superseded by stop"):
        await restart
    assert await stop == "Stop"
    assert rec.ran == [Start(), Stop()]
    await actor.stop()


async def test_stop_cancels_an_in_flight_readiness_wait() -> None:
    actor, rec = await _actor()
    deploy = actor.submit(Deploy(WAITS))
    await rec.entered.wait()
    stop = actor.submit(Stop())
    with pytest.raises(Cancelled, match="cancelled by stop"):
        await asyncio.wait_for(deploy, 5)
    assert await asyncio.wait_for(stop, 5) == "Stop"
    await actor.stop()


async def test_a_command_whose_caller_has_gone_is_skipped() -> None:
    actor, rec = await _actor()
    rec.gate.clear()
    first = actor.submit(Start())
    await rec.entered.wait()
    gone = actor.submit(Restart())
    gone.cancel()
    rec.gate.set()
    await first
    assert await actor.call(Stop()) == "Stop"
    assert Restart() not in rec.ran
    await actor.stop()


async def test_stopping_the_actor_fails_queued_commands_with_a_named_error() -> None:
    actor, rec = await _actor()
    rec.gate.clear()
    running = actor.submit(Start())
    await rec.entered.wait()
    queued = actor.submit(Deploy(9))
    await actor.stop()
    for fut in (running, queued):
        with pytest.raises(Cancelled, match="hub is stopping"):
            await fut
    with pytest.raises(Cancelled, match="hub is stopping"):
        await actor.submit(Start())


async def test_a_slow_actor_does_not_delay_another() -> None:
    slow, slow_rec = await _actor()
    fast, _ = await _actor()
    slow_rec.gate.clear()
    stuck = slow.submit(Start())
    await slow_rec.entered.wait()
    assert await asyncio.wait_for(fast.call(Start()), 5) == "Start"
    assert not stuck.done()
    slow_rec.gate.set()
    await stuck
    await slow.stop()
    await fast.stop()


async def test_a_stop_that_arrives_before_the_wait_begins_still_cancels_it() -> None:
    gate, started = asyncio.Event(), asyncio.Event()
    actors: list[Actor] = []

    async def handler(command: Command) -> Any:
        if isinstance(command, Deploy):
            started.set()
            await gate.wait()  # still creating the unit when the stop comes
            await actors[0].wait(asyncio.sleep(3600))
        return type(command).__name__

    actors.append(Actor("app", handler))
    actor = actors[0]
    deploy = actor.submit(Deploy(WAITS))
    await started.wait()
    stop = actor.submit(Stop())
    gate.set()
    with pytest.raises(Cancelled, match="cancelled by stop"):
        await asyncio.wait_for(deploy, 5)
    assert await stop == "Stop"
    await actor.stop()
