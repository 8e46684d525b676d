"""The SSH transport: HTTP over ``ssh user@host bindrop api-stdio``, so no port needs opening.

Each HTTP connection is one ``ssh`` process whose stdin and stdout are one end of a socket
pair; aiohttp speaks HTTP over the other end. On the server, ``bindrop api-stdio`` pipes that
stream into the local control socket (as the SSH user: root, for the socket to admit it).
The user's ``ssh`` does the authentication, with their keys, agent and ``~/.ssh/config``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import socket
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import aiohttp

from bindrop.client.servers import Endpoint
from bindrop.errors import InvalidInput

if TYPE_CHECKING:
    from aiohttp.client_proto import ResponseHandler
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.tracing import Trace

REAP_GRACE_S = 2.0
PIPE_CHUNK = 64 * 1024


def ssh_argv(endpoint: Endpoint, ssh: Sequence[str] = ("ssh",),
             remote: Sequence[str] = ("bindrop",)) -> list[str]:
    """The command that opens one stream to the server's control socket. Pure.

    ``ssh`` is the local ssh command (``BINDROP_SSH``, like ``GIT_SSH_COMMAND``); ``remote``
    how the server runs bindrop (``BINDROP_REMOTE_COMMAND``).
    """
    if endpoint.transport != "ssh" or not endpoint.ssh_host:
        raise InvalidInput(f"{endpoint.url} is not an ssh:// server")
    argv = [*ssh, "-T", "-o", "BatchMode=yes"]
    if endpoint.ssh_port:
        argv += ["-p", str(endpoint.ssh_port)]
    target = f"{endpoint.ssh_user}@{endpoint.ssh_host}" if endpoint.ssh_user \
        else endpoint.ssh_host
    command = [*remote, "api-stdio"]
    if endpoint.socket_path:
        command += ["--socket", endpoint.socket_path]
    return [*argv, "--", target, shlex.join(command)]


def ssh_tty_argv(endpoint: Endpoint, app: str, args: Sequence[str], *,
                 ssh: Sequence[str] = ("ssh",), remote: Sequence[str] = ("bindrop",)
                 ) -> list[str]:
    """``ssh -t`` running ``bindrop run --tty APP -- ARGS`` on the server (against its
    control socket), for an interactive one-off run. Pure."""
    base = ssh_argv(endpoint, ssh, remote)
    target = base[-2]
    head = [a for a in base[:-3] if a != "-T"]
    command = [*remote, "run", "--tty"]
    if endpoint.socket_path:
        command += ["--server", f"unix:{endpoint.socket_path}"]
    return [*head, "-t", "--", target, shlex.join([*command, app, "--", *args])]


class SSHConnector(aiohttp.BaseConnector):
    """Opens each connection by running ``argv`` (``ssh_argv``)."""

    def __init__(self, argv: Sequence[str]) -> None:
        super().__init__(limit=4)
        self._argv = list(argv)
        self._procs: set[asyncio.subprocess.Process] = set()

    async def _create_connection(self, req: ClientRequest, traces: list[Trace],
                                 timeout: aiohttp.ClientTimeout) -> ResponseHandler:
        ours, theirs = socket.socketpair()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._argv, stdin=theirs.fileno(), stdout=theirs.fileno())
        except OSError as exc:
            ours.close()
            raise aiohttp.ClientConnectionError(
                f"cannot run {self._argv[0]}: {exc}") from None
        finally:
            theirs.close()
        self._procs.add(proc)
        _, protocol = await asyncio.get_running_loop().create_unix_connection(
            self._factory, sock=ours)
        return protocol

    async def reap(self) -> None:
        """After the session closed: let each ssh end on its own (its stdin is at EOF),
        then end the stragglers."""
        procs, self._procs = self._procs, set()
        for proc in procs:
            try:
                async with asyncio.timeout(REAP_GRACE_S):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


def pipe_stdio(socket_path: str) -> None:
    """``bindrop api-stdio``: copy stdin to the control socket and its answers to stdout,
    until either side ends. Blocking (two threads); returns when the socket is done."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
    except OSError as exc:
        raise InvalidInput(f"cannot connect to {socket_path}: {exc}; is the hub running?") \
            from None

    def upstream() -> None:
        try:
            while data := os.read(0, PIPE_CHUNK):
                sock.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, daemon=True).start()
    try:
        while data := sock.recv(PIPE_CHUNK):
            view = memoryview(data)
            while view:
                view = view[os.write(1, view):]
    except OSError:
        pass
    finally:
        sock.close()
