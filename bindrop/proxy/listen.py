"""Listening sockets: inherited from systemd (socket activation) or bound by the proxy.

systemd passes sockets as fds 3, 4, ... with ``LISTEN_FDS`` (how many) and ``LISTEN_PID``
(whom they are for); see sd_listen_fds(3). The sockets stay systemd's: a proxy restarting
closes its copies while the kernel keeps queueing connections for the next one.
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


def inherited_sockets(environ: Mapping[str, str]) -> list[socket.socket]:
    """Sockets passed by systemd to this process (close-on-exec set, as sd_listen_fds does)."""
    sockets = []
    for fd in parse_listen_fds(environ, os.getpid()):
        os.set_inheritable(fd, False)
        sockets.append(socket.socket(fileno=fd))
    return sockets


def bind_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock
