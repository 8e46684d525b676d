"""Who is calling: root on the unix socket, or the bearer of a token over TCP.

``parse_bearer`` is pure; ``peer_uid`` reads the kernel's peer credentials of a unix socket.
A token's text is never logged or put in a message.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass, field

from bindrop.errors import Forbidden, Unauthorized
from bindrop.store.tokens import Scope

NO_TOKEN = ("this endpoint needs a token: send `Authorization: Bearer <token>` (the CLI: "
            "--token or BINDROP_TOKEN); create one on the server with `bindrop token create NAME`")


@dataclass(frozen=True)
class Caller:
    """``name`` is recorded as who did it (``created_by`` of a release)."""

    name: str
    scope: Scope
    #: The token's name when a token (or a dashboard session standing for it) called.
    token: str | None = None
    #: The secret of the dashboard session that called, if one did (to end it).
    session: str | None = field(default=None, repr=False)

    @property
    def admin(self) -> bool:
        return self.scope == "admin"


def parse_bearer(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; ``Unauthorized`` otherwise."""
    if not header:
        raise Unauthorized(NO_TOKEN)
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthorized(NO_TOKEN)
    return token


def require_admin(caller: Caller, what: str) -> None:
    if not caller.admin:
        who = f"token {caller.token!r}" if caller.token else caller.name
        raise Forbidden(f"{who} is read-only and cannot {what}; use an admin "
                        "token (`bindrop token create NAME` without --read-only)")


def peer_uid(sock: socket.socket | None) -> int | None:
    """The uid of the process at the other end of a unix socket (None if unknown)."""
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def local_caller(uid: int | None) -> Caller:
    """The caller on the unix socket: root (or the hub's own user) is admin; nobody else."""
    if uid is None or uid not in (0, os.geteuid()):
        raise Forbidden("the control socket is for root only; run the command with sudo")
    return Caller("root" if uid == 0 else f"uid {uid}", "admin")
