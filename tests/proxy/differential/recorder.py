"""The recording upstream: a raw asyncio server that keeps the exact bytes of every request a
proxy forwards to it, parsed as an app would, and answers each with a scripted raw answer.

One recorder listens on one port per *lane* (``nginx``, ``bindrop``): each proxy has its own
port, so what each forwarded is never mixed up. Requests to ``/probe/...`` get the probe
answer (``probe_answer``) whatever the script says: the harness sends one after every case
to see that the proxy's pooled connections still carry requests intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import socket
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .wire import Incomplete, ParsedRequest, parse_answers, parse_request

T = TypeVar("T")

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-App: recorder\r\n\r\nok"


def probe_answer(target: str) -> bytes:
    body = f"probe {target}".encode()
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-App: probe\r\n\r\n%s" % (len(body), body)


def _closes_after(answer: bytes) -> bool:
    """An answer that ends only when the connection does, or says it closes."""
    head = answer.partition(b"\r\n\r\n")[0].lower()
    parsed = parse_answers(answer, ["GET"], closed=True)
    if not parsed.final:
        return False
    final = parsed.final[-1]
    return b"connection: close" in head or (
        final.status not in (101, 204, 304) and not final.header(b"content-length")
        and not final.header(b"transfer-encoding"))


@dataclass
class Received:
    lane: str
    conn: int
    request: ParsedRequest


@dataclass
class Lane:
    name: str
    port: int = 0
    script: tuple[bytes, ...] = ()
    served: int = 0
    log: list[Received] = field(default_factory=list)
    #: Unfinished request bytes per open connection.
    buffers: dict[int, bytearray] = field(default_factory=dict)
    #: Bytes received on connections that became tunnels (after a 101).
    tunnels: dict[int, bytearray] = field(default_factory=dict)
    connections: int = 0


class Recorder:
    def __init__(self, lanes: tuple[str, ...]) -> None:
        self.lanes = {name: Lane(name) for name in lanes}
        self._servers: list[asyncio.Server] = []
        self._ids = itertools.count(1)

    async def start(self) -> None:
        for lane in self.lanes.values():
            server = await asyncio.start_server(functools.partial(self._serve, lane),
                                                "127.0.0.1", 0)
            lane.port = server.sockets[0].getsockname()[1]
            self._servers.append(server)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        self._servers.clear()

    def begin(self, lane: str, script: tuple[bytes, ...]) -> int:
        """Start a case on ``lane``: answers come from ``script`` in order (the last one
        repeats; none: ``OK``). Returns the mark to pass to ``since``."""
        state = self.lanes[lane]
        state.script, state.served = script, 0
        for buffer in state.tunnels.values():
            buffer.clear()
        return len(state.log)

    def since(self, lane: str, mark: int) -> tuple[list[ParsedRequest], list[bytes], bytes]:
        """What ``lane`` received from ``mark`` on: whole requests, the unfinished ones (open
        connections), and tunnel bytes."""
        state = self.lanes[lane]
        requests = [r.request for r in state.log[mark:]]
        partial = [bytes(b) for b in state.buffers.values() if b]
        tunnel = b"".join(bytes(b) for b in state.tunnels.values())
        return requests, partial, tunnel

    def _answer_for(self, lane: Lane, request: ParsedRequest) -> bytes:
        if request.target.startswith("/probe/"):
            return probe_answer(request.target)
        script = lane.script or (OK,)
        answer = script[min(lane.served, len(script) - 1)]
        lane.served += 1
        return answer

    async def _serve(self, lane: Lane, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        conn = next(self._ids)
        lane.connections += 1
        buffer = lane.buffers[conn] = bytearray()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                buffer += data
                while buffer:
                    try:
                        request, rest = parse_request(bytes(buffer))
                    except Incomplete:
                        break
                    buffer[:] = rest
                    lane.log.append(Received(lane.name, conn, request))
                    if "unreadable" in request.anomalies:
                        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                     b"Connection: close\r\n\r\n")
                        return
                    answer = self._answer_for(lane, request)
                    writer.write(answer)
                    await writer.drain()
                    if answer.startswith(b"HTTP/1.1 101") or b"\r\n\r\nHTTP/1.1 101" in answer:
                        await self._tunnel(lane, conn, bytes(buffer), reader)
                        buffer.clear()
                        return
                    if _closes_after(answer):
                        return
        except (ConnectionError, OSError):
            return
        finally:
            lane.buffers.pop(conn, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _tunnel(self, lane: Lane, conn: int, first: bytes,
                      reader: asyncio.StreamReader) -> None:
        tunnel = lane.tunnels.setdefault(conn, bytearray())
        tunnel += first
        while data := await reader.read(65536):
            tunnel += data


class Background:
    """An event loop in its own thread, for servers the (synchronous) tests talk to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="differential", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.call(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
