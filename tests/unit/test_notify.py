"""sd_notify against a real datagram socket."""

from __future__ import annotations

import socket
from pathlib import Path

from bindrop.hub.notify import sd_notify


def test_notify_sends_the_message_to_notify_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        assert sd_notify("READY=1", {"NOTIFY_SOCKET": str(path)})
        assert server.recv(100) == b"READY=1"


def test_notify_without_systemd_is_a_no_op() -> None:
    assert sd_notify("READY=1", {}) is False
