"""sd_notify: tell systemd (``Type=notify``) that the hub is ready or stopping.

A no-op when not run by systemd (no ``NOTIFY_SOCKET``), e.g. in tests.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping


def sd_notify(message: str, environ: Mapping[str, str]) -> bool:
    """Send ``message`` (e.g. "READY=1") to ``NOTIFY_SOCKET``; False when there is none."""
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True
