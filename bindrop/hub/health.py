"""Readiness and liveness checks: an HTTP GET answering 2xx, or a TCP connect.

Checks are small coroutines returning a ``Probe`` (ok + a reason a person can read); the
waiting loop around them is ``wait_until_ready``. They never raise for a failing app.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bindrop.errors import NotReady

FIRST_RETRY = 0.01


@dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str


@dataclass(frozen=True)
class HealthCheck:
    """How to tell that an app answers: ``path`` set means HTTP GET, else TCP connect."""

    path: str | None = None
    timeout: float = 30.0  # overall readiness budget
    interval: float = 0.1  # between attempts
    attempt_timeout: float = 2.0  # one connect or request

    def describe(self) -> str:
        return f"GET {self.path}" if self.path else "TCP connect"


async def probe_tcp(host: str, port: int, timeout: float) -> Probe:
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as exc:
        return Probe(False, f"TCP connect to {host}:{port} failed: {_why(exc)}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Probe(True, f"TCP connect to {host}:{port} succeeded")


async def probe_http(host: str, port: int, path: str, timeout: float) -> Probe:
    """GET ``path`` with a minimal HTTP/1.1 client: only the status line matters."""
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: bindrop-health\r\n"
               "Connection: close\r\n\r\n").encode()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(request)
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        return Probe(False, f"GET {path} on port {port} failed: {_why(exc)}")
    parts = status_line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return Probe(False, f"GET {path} on port {port} got no HTTP answer")
    status = int(parts[1])
    if 200 <= status < 300:
        return Probe(True, f"GET {path} answered {status}")
    return Probe(False, f"GET {path} answered {status}, not 2xx")


async def probe(check: HealthCheck, port: int, host: str = "127.0.0.1") -> Probe:
    if check.path:
        return await probe_http(host, port, check.path, check.attempt_timeout)
    return await probe_tcp(host, port, check.attempt_timeout)


async def wait_until_ready(
    check: HealthCheck,
    port: int,
    *,
    gone: Callable[[], str | None] = lambda: None,
    changed: Callable[[], Awaitable[object]] | None = None,
    host: str = "127.0.0.1",
) -> Probe:
    """Probe until the check passes; raise ``NotReady`` on timeout or when ``gone()`` says why.

    ``gone`` is asked before every attempt: a unit that crashed or gave up makes waiting
    pointless, and its reason (e.g. "exited with status 1") ends the wait at once.
    ``changed``, when given, is awaited between attempts instead of a plain sleep so a unit
    state change wakes the loop early.
    """
    deadline = time.monotonic() + check.timeout
    last = Probe(False, "not checked yet")
    # systemd reports a Type=exec unit started before the program listens: retry soon at
    # first (10 ms, doubling) so an app that is ready at once does not wait a whole interval.
    pause = min(FIRST_RETRY, check.interval)
    while True:
        _raise_if_gone(gone)
        last = await probe(check, port, host)
        if last.ok:
            return last
        now = time.monotonic()
        if now >= deadline:
            raise NotReady(f"not ready after {check.timeout:g}s ({check.describe()}): "
                           f"{last.detail}")
        next_probe = min(now + pause, deadline)
        pause = min(pause * 2, check.interval)
        if changed is None:
            await asyncio.sleep(next_probe - now)
            continue
        # A change wakes us only to ask gone() again; the next probe still waits for its
        # interval, or a busy hub (hundreds of changes a second) would probe in a loop.
        while (left := next_probe - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await changed()
            _raise_if_gone(gone)


def _raise_if_gone(gone: Callable[[], str | None]) -> None:
    reason = gone()
    if reason:
        raise NotReady(f"the release stopped before it was ready: {reason}")


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__
