"""Restarting the proxy process on a listening socket it does not own (socket activation)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

from bindrop.proxy.listen import bind_socket

from .kit import (
    HANG,
    Backend,
    HubEnd,
    Visitors,
    get_status,
    proxy_options,
    running_proxy,
    wait_for_answers,
)

# Put the inherited socket at fd 3 and say it is for this very process, as systemd does.
_ACTIVATE = ("import os, sys; os.dup2(int(sys.argv[1]), 3); "
             "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid())); "
             "os.execv(sys.argv[2], sys.argv[2:])")


async def start_proxy_process(sock: socket.socket, hub: HubEnd, root: Path
                              ) -> asyncio.subprocess.Process:
    env = {**os.environ, "BINDROP_ROOT": str(root), "BINDROP_PROXY_HUB_SOCKET":
           str(hub.socket_path), "BINDROP_PROXY_LISTEN": "127.0.0.1:1"}
    env.pop("LISTEN_FDS", None)
    with (root / "proxy.log").open("ab") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-c", _ACTIVATE, str(sock.fileno()), sys.executable, "-m",
            "bindrop", "proxy", pass_fds=(sock.fileno(),), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=log)


async def test_a_proxy_restart_under_a_request_loop_loses_no_request(
        hub_end: HubEnd, backend: Backend, tmp_path: Path) -> None:
    await hub_end.publish("web", backend.port)
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    proxy = await start_proxy_process(sock, hub_end, tmp_path)
    try:
        async with asyncio.timeout(HANG):  # the first answers wait in the socket's queue
            assert await get_status(port) == 200
        async with Visitors(port) as visitors:
            for _ in range(2):
                await asyncio.sleep(0.5)
                before = visitors.results["200"]
                # As `systemctl restart`: the old one stops, then the new one starts.
                proxy.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(proxy.wait(), HANG) == 0
                proxy = await start_proxy_process(sock, hub_end, tmp_path)
                await wait_for_answers(visitors.results, before + 20)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proxy.send_signal(signal.SIGTERM)
        await proxy.wait()
        sock.close()
    assert set(visitors.results) == {"200"}, visitors.results
    assert visitors.results["200"] > 40


async def test_a_connection_accepted_before_stop_still_gets_its_answer(
        hub_end: HubEnd, backend: Backend, tmp_path: Path) -> None:
    await hub_end.publish("web", backend.port)
    async with running_proxy(proxy_options(hub_end, tmp_path)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.ports[0])
        await asyncio.sleep(0.1)  # accepted, no request yet
        closing = asyncio.ensure_future(proxy.close())
        await asyncio.sleep(0.5)  # the request is slow to come
        writer.write(b"GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), HANG)
        writer.close()
        await closing
    assert answer.startswith(b"HTTP/1.1 200")
