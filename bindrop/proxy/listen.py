"""Listening sockets: inherited from systemd (socket activation) or bound by the proxy.

systemd passes sockets as fds 3, 4, ... with ``LISTEN_FDS`` (how many) and ``LISTEN_PID``
(whom they are for); see sd_listen_fds(3). ``LISTEN_FDNAMES`` (colon-separated, from
``FileDescriptorName=`` in the .socket unit) names them: the ones named ``https`` get TLS.
The sockets stay systemd's: a proxy restarting closes its copies while the kernel keeps
queueing connections for the next one.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

SD_LISTEN_FDS_START = 3


def parse_listen_fds(environ: Mapping[str, str], pid: int) -> list[int]:
    """The fds systemd passed to process ``pid``; empty when they are not for it. Pure."""
    if environ.get("LISTEN_PID", "").strip() != str(pid):
        return []
    count = environ.get("LISTEN_FDS", "").strip()
    if not count.isdigit():
        return []
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count)))


HTTPS_FDNAME = "https"


def parse_listen_fdnames(environ: Mapping[str, str], pid: int) -> list[tuple[int, str]]:
    """The fds systemd passed to ``pid`` with their names (``unknown`` where none was given,
    as systemd says). Pure."""
    fds = parse_listen_fds(environ, pid)
    names = environ.get("LISTEN_FDNAMES", "").split(":") if environ.get("LISTEN_FDNAMES") \
        else []
    return [(fd, names[i] if i < len(names) and names[i] else "unknown")
            for i, fd in enumerate(fds)]


def inherited_sockets(environ: Mapping[str, str]) -> list[socket.socket]:
    """Sockets passed by systemd to this process (close-on-exec set, as sd_listen_fds does)."""
    plain, https = inherited_sockets_by_kind(environ)
    return plain + https


def inherited_sockets_by_kind(environ: Mapping[str, str]
                              ) -> tuple[list[socket.socket], list[socket.socket]]:
    """Sockets passed by systemd to this process: (plain HTTP, HTTPS by name ``https``)."""
    plain: list[socket.socket] = []
    https: list[socket.socket] = []
    for fd, name in parse_listen_fdnames(environ, os.getpid()):
        os.set_inheritable(fd, False)
        (https if name == HTTPS_FDNAME else plain).append(socket.socket(fileno=fd))
    return plain, https


def bind_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock
