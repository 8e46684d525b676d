"""Jobs of actions not awaited, and the upload check that refuses content early."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bindrop.api.jobs import Jobs
from bindrop.errors import InvalidInput, NotFound, NotReady
from bindrop.hub.config import _checked
from bindrop.hub.lifecycle import Outcome


async def test_a_job_is_running_then_tells_how_it_ended() -> None:
    jobs = Jobs()
    loop = asyncio.get_running_loop()
    ok, bad = loop.create_future(), loop.create_future()
    first, second = jobs.add("web", "deploy", ok), jobs.add("web", "restart", bad)
    assert jobs.get(first.id).to_dict()["state"] == "running"
    ok.set_result(Outcome("web", "deploy", release="2"))
    bad.set_exception(NotReady("did not get ready"))
    await asyncio.sleep(0)
    assert jobs.get(first.id).to_dict()["result"]["release"] == "2"
    failed = jobs.get(second.id).to_dict()
    assert failed["state"] == "failed"
    assert failed["error"] == {"code": "not_ready", "message": "did not get ready"}


async def test_finished_jobs_are_forgotten_first_when_full() -> None:
    jobs = Jobs(keep=2)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    done.set_result(None)
    old = jobs.add("a", "stop", done)
    running = jobs.add("a", "start", loop.create_future())
    jobs.add("a", "start", loop.create_future())
    with pytest.raises(NotFound):
        jobs.get(old.id)
    assert jobs.get(running.id).to_dict()["state"] == "running"


async def test_content_that_cannot_run_is_refused_before_the_rest_is_read() -> None:
    read = []

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(100):
            read.append(i)
            yield b"PK\x03\x04" + b"z" * 1020  # a .zip, not a program

    with pytest.raises(InvalidInput, match="neither an ELF binary nor a script"):
        async for _ in _checked(chunks(), bundle=False):
            pass
    assert read == [0]


async def test_a_short_script_is_checked_at_its_end() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"#!/bin/sh\r\n"

    with pytest.raises(InvalidInput, match="CRLF"):
        async for _ in _checked(chunks(), bundle=False):
            pass
