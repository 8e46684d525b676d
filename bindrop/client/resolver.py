"""Name resolution for the client: ``*.localhost`` is this machine, whatever NSS says.

RFC 6761 reserves ``localhost`` and every name under it for the loopback address; curl and
browsers answer them without asking, but glibc's ``getaddrinfo`` resolves only what
/etc/hosts lists (or what nss-myhostname adds, where installed), so
``http://bindrop.localhost:8080`` would fail in aiohttp. ``loopback_for`` is the pure rule;
``LocalhostResolver`` applies it before the default resolver.
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

LOOPBACK = "127.0.0.1"


def loopback_for(host: str) -> str | None:
    """``127.0.0.1`` for ``localhost`` and any name under it (any case, trailing dot or
    not); None for every other name. Pure."""
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return LOOPBACK
    return None


class LocalhostResolver(AbstractResolver):
    """Answers ``*.localhost`` with 127.0.0.1 and asks aiohttp's default resolver the rest."""

    def __init__(self, fallback: AbstractResolver | None = None) -> None:
        self._fallback = fallback or DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        address = loopback_for(host)
        if address is None:
            return await self._fallback.resolve(host, port, family)
        return [ResolveResult(hostname=host, host=address, port=port, family=socket.AF_INET,
                              proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        await self._fallback.close()
