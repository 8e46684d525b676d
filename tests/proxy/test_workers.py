"""``bindrop proxy --workers N``: several processes on the sockets, each its own hub peer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from bindrop.hub.state import Route
from bindrop.proxy.listen import bind_socket

from .kit import HANG, Backend, HubEnd, get, get_status
from .test_https import make_ca, make_leaf
from .test_restart import _ACTIVATE

# Two sockets as systemd passes bindrop-proxy.socket and bindrop-proxy-https.socket.
_ACTIVATE_HTTPS = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
                   "os.environ.update(LISTEN_FDS='2', LISTEN_PID=str(os.getpid()), "
                   "LISTEN_FDNAMES='http:https'); os.execv(sys.argv[3], sys.argv[3:])")


@contextlib.asynccontextmanager
async def proxy_process(hub: HubEnd, root: Path, workers: int,
                        extra_env: dict[str, str] | None = None, *, https: bool = False
                        ) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """``bindrop proxy --workers N`` on a socket it inherits, as from systemd: (process,
    port); with ``https`` also an HTTPS socket, whose port it is then. Stopped with SIGTERM
    at the end, which must end it cleanly."""
    sockets = [bind_socket("127.0.0.1", 0) for _ in range(2 if https else 1)]
    env = {**os.environ, "BINDROP_ROOT": str(root), "BINDROP_PROXY_HUB_SOCKET":
           str(hub.socket_path), "BINDROP_PROXY_LISTEN": "127.0.0.1:1", **(extra_env or {})}
    env.pop("LISTEN_FDS", None)
    with (root / "proxy.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _ACTIVATE_HTTPS if https else _ACTIVATE,
            *(str(s.fileno()) for s in sockets), sys.executable, "-m", "bindrop", "proxy",
            "--workers", str(workers), pass_fds=tuple(s.fileno() for s in sockets),
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log)
    try:
        yield process, sockets[-1].getsockname()[1]
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), HANG) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        for sock in sockets:
            sock.close()


def worker_pids(process: asyncio.subprocess.Process) -> set[int]:
    pids = set()
    for child in psutil.Process(process.pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):  # exited since it was listed
            if child.status() != psutil.STATUS_ZOMBIE:
                pids.add(child.pid)
    return pids


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def peer_pids(hub: HubEnd) -> set[int]:
    """Proxy ids are ``<hostname>-<pid>-<random>``."""
    return {int(peer.rsplit("-", 2)[1]) for peer in hub.link.peers()}


async def wait_for_peers(hub: HubEnd, process: asyncio.subprocess.Process, count: int
                         ) -> set[int]:
    """Until ``count`` workers run and each is connected to the hub: their pids."""
    async with asyncio.timeout(HANG):
        while True:
            pids = worker_pids(process)
            if len(pids) == count and peer_pids(hub) == pids:
                return pids
            await asyncio.sleep(0.05)


async def test_every_worker_is_a_hub_peer_and_a_publish_reaches_them_all(
        hub_end: HubEnd, backend: Backend, tmp_path: Path) -> None:
    await hub_end.publish("web", backend.port)
    async with proxy_process(hub_end, tmp_path, workers=2) as (process, port):
        pids = await wait_for_peers(hub_end, process, 2)
        assert len(pids) == 2 and process.pid not in pids
        other = await Backend("v2").start()
        try:
            # publish returns once every connected worker confirmed the new table, so no
            # connection, whichever worker accepts it, may still reach the old release.
            await hub_end.publish("web", other.port, release="2")
            answers = await asyncio.gather(*(get(port) for _ in range(20)))
            assert {status for status, _ in answers} == {200}
            assert all(b'"label": "v2"' in body for _, body in answers)
        finally:
            await other.stop()


async def test_a_killed_worker_is_replaced_and_no_request_fails(
        hub_end: HubEnd, backend: Backend, tmp_path: Path) -> None:
    await hub_end.publish("web", backend.port)
    async with proxy_process(hub_end, tmp_path, workers=2) as (process, port):
        pids = await wait_for_peers(hub_end, process, 2)
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        async with asyncio.timeout(HANG):
            while victim in worker_pids(process):
                await asyncio.sleep(0.02)
        # The survivor takes every connection from the shared socket meanwhile.
        statuses = [await get_status(port) for _ in range(20)]
        assert set(statuses) == {200}
        replaced = await wait_for_peers(hub_end, process, 2)
        assert victim not in replaced and len(replaced & pids) == 1
        assert {await get_status(port) for _ in range(10)} == {200}


async def test_a_drain_waits_for_the_worker_with_the_request_in_flight(
        hub_end: HubEnd, backend: Backend, tmp_path: Path) -> None:
    await hub_end.publish("web", backend.port)
    async with proxy_process(hub_end, tmp_path, workers=2) as (process, port):
        await wait_for_peers(hub_end, process, 2)
        held = asyncio.ensure_future(get(port, path="/hold"))
        await asyncio.wait_for(backend.first_chunk.wait(), HANG)
        drain = asyncio.ensure_future(hub_end.link.drain(
            Route("bindrop-app-web-1.service", "1", backend.port), HANG))
        await asyncio.sleep(0.5)  # both workers report; the one holding the request must not
        assert not drain.done()
        backend.release.set()
        assert await asyncio.wait_for(held, HANG) == (200, b"held by web")
        await asyncio.wait_for(drain, HANG)


async def test_ready_is_reported_once_every_worker_serves(
        hub_end: HubEnd, backend: Backend, tmp_path: Path) -> None:
    await hub_end.publish("web", backend.port)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        async with proxy_process(hub_end, tmp_path, workers=2, extra_env={
                "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}) as (process, port):
            message = await asyncio.wait_for(loop.sock_recv(notify, 4096), HANG)
            assert message.startswith(b"READY=1")
            # Ready means served: both workers follow the hub and answer already.
            assert len(peer_pids(hub_end)) == 2 and peer_pids(hub_end) == worker_pids(process)
            assert await get_status(port) == 200
    finally:
        notify.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_stop_ends_every_worker(hub_end: HubEnd, backend: Backend, tmp_path: Path,
                                        signum: int) -> None:
    await hub_end.publish("web", backend.port)
    async with proxy_process(hub_end, tmp_path, workers=2) as (process, _port):
        pids = await wait_for_peers(hub_end, process, 2)
        process.send_signal(signum)
        assert await asyncio.wait_for(process.wait(), HANG) == 0
        assert not [pid for pid in pids if alive(pid)]


def resumed_visits(port: int, ca: Path, version: ssl.TLSVersion, visits: int
                   ) -> tuple[Counter[bool], set[str]]:
    """A visitor that comes back ``visits`` times with its last TLS session: how often the
    proxy resumed it, and the request id prefixes (one per worker) that answered."""
    context = ssl.create_default_context(cafile=str(ca))
    context.minimum_version = context.maximum_version = version
    reused: Counter[bool] = Counter()
    workers: set[str] = set()
    session = None
    for n in range(visits + 1):
        with socket.create_connection(("127.0.0.1", port), timeout=HANG) as raw, \
                context.wrap_socket(raw, server_hostname="web.test", session=session) as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
            if n:  # the first visit makes the session
                reused[tls.session_reused] += 1
            session = tls.session or session
        head = answer.partition(b"\r\n\r\n")[0].decode()
        request_id = next(line.split(":", 1)[1].strip() for line in head.split("\r\n")
                          if line.lower().startswith("x-request-id:"))
        workers.add(request_id[:-8])  # the worker's prefix, then its counter
    return reused, workers


async def test_a_returning_visitor_resumes_its_tls_session_on_any_worker(
        hub_end: HubEnd, backend: Backend, tmp_path: Path) -> None:
    """Session tickets are encrypted with keys made before the workers were forked: a ticket
    from one worker resumes on the other (with keys per worker, about half did not)."""
    ca_dir, root = tmp_path / "ca", tmp_path / "root"
    tls_dir = root / "etc" / "bindrop" / "tls"
    ca_dir.mkdir()
    tls_dir.mkdir(parents=True)
    ca = make_ca(ca_dir)
    make_leaf(ca_dir, tls_dir, "web.test")
    await hub_end.publish("web", backend.port)
    async with proxy_process(hub_end, root, 2, https=True) as (process, port):
        await wait_for_peers(hub_end, process, 2)
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            reused, workers = await asyncio.to_thread(resumed_visits, port, ca, version, 30)
            assert reused == {True: 30}, (version, reused)
            assert len(workers) == 2, (version, workers)  # both workers took the visitor
