"""How to run a command on a server: over SSH, or right here for a local (``unix:``) server."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from bindrop.client.servers import Endpoint, parse_server
from bindrop.errors import InvalidInput


@dataclass(frozen=True)
class Remote:
    """A server to run commands on. ``ssh``: the local ssh command (``BINDROP_SSH``);
    ``bindrop``: how the server runs bindrop (``BINDROP_REMOTE_COMMAND``)."""

    endpoint: Endpoint
    ssh: tuple[str, ...] = ("ssh",)
    bindrop: tuple[str, ...] = ("bindrop",)

    @classmethod
    def of(cls, url: str, ssh: Sequence[str] = ("ssh",), bindrop: Sequence[str] = ("bindrop",),
           *, what: str = "server") -> Remote:
        endpoint = parse_server(url)
        if endpoint.transport == "http":
            raise InvalidInput(f"the {what} {url} is an HTTP URL: moving a server needs "
                               f"ssh://root@host (or this server's unix: socket)")
        return cls(endpoint, tuple(ssh), tuple(bindrop))

    @property
    def is_local(self) -> bool:
        return self.endpoint.transport == "unix"

    @property
    def host(self) -> str:
        """The host name or address (``localhost`` for this server)."""
        return self.endpoint.ssh_host or "localhost"

    @property
    def url(self) -> str:
        return self.endpoint.url

    def shell_argv(self, command: str) -> list[str]:
        """``command`` (a shell line) on the server. Pure."""
        if self.is_local:
            return ["/bin/sh", "-c", command]
        e = self.endpoint
        argv = [*self.ssh, "-T", "-o", "BatchMode=yes"]
        if e.ssh_port:
            argv += ["-p", str(e.ssh_port)]
        target = f"{e.ssh_user}@{e.ssh_host}" if e.ssh_user else str(e.ssh_host)
        return [*argv, "--", target, command]

    def bindrop_argv(self, *args: str) -> list[str]:
        """``bindrop ARGS`` on the server (this very bindrop for a local one). Pure."""
        if self.is_local:
            return [sys.executable, "-m", "bindrop", *args]
        return self.shell_argv(shlex.join([*self.bindrop, *args]))
