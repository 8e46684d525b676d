"""The differential harness can fail: a proxy that smuggles or passes a poisoned answer on is
caught. The culprit is a deliberately naive relay in front of the same recording upstream:
it drops Content-Length (as a proxy that honours ``Connection: Content-Length`` does) and
copies everything else both ways, byte for byte."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest

from .conftest import Rig
from .corpus import ANSWERS, REQUESTS
from .harness import Case, Expected, run_case, violations

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n"


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def _relay(upstream: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    kept = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"content-length")]
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
    up_writer.write(b"\r\n".join(kept))
    await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))


@pytest.fixture
def naive_relay(rig: Rig) -> Iterator[int]:
    upstream = rig.recorder.lanes["bindrop"].port

    async def start() -> asyncio.Server:
        return await asyncio.start_server(lambda r, w: _relay(upstream, r, w), "127.0.0.1", 0)

    server = rig.background.call(start())
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def _case(cases: list[Case], name: str) -> Case:
    return next(c for c in cases if c.name == name)


def test_a_smuggled_request_is_caught(rig: Rig, naive_relay: int) -> None:
    case = _case(REQUESTS, "Connection names Content-Length (smuggles the body as a request)")
    outcome = run_case(rig.background, rig.recorder, "bindrop", naive_relay, case)
    problems = violations(case, outcome)
    assert any("/smuggled" in p and "visitor sent only 1" in p for p in problems), problems
    assert any("body b'' != " in p for p in problems), problems


def test_a_poisoned_answer_is_caught(rig: Rig, naive_relay: int) -> None:
    case = _case(ANSWERS, "an answer longer than its Content-Length")
    outcome = run_case(rig.background, rig.recorder, "bindrop", naive_relay, case)
    problems = violations(case, outcome)
    assert any("bytes after the answers" in p or "2 answers" in p for p in problems), problems


def test_a_changed_body_is_caught(rig: Rig, naive_relay: int) -> None:
    """The same relay loses a plain POST's framing: the app reads an empty body and the
    visitor's body as a broken second request."""
    case = Case("relay POST", (b"POST /p HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5"
                               b"\r\n\r\nhello",), (Expected("POST", "/p", b"hello"),))
    outcome = run_case(rig.background, rig.recorder, "bindrop", naive_relay, case)
    assert violations(case, outcome)
