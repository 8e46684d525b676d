"""The client resolves ``*.localhost`` to 127.0.0.1 itself (glibc may not: RFC 6761)."""

from __future__ import annotations

import socket

import pytest

from bindrop.client.resolver import LocalhostResolver, loopback_for


@pytest.mark.parametrize("host", ["localhost", "bindrop.localhost", "Bindrop.LOCALHOST",
                                  "a.b.localhost", "bindrop.localhost."])
def test_localhost_and_every_name_under_it_is_loopback(host: str) -> None:
    assert loopback_for(host) == "127.0.0.1"


@pytest.mark.parametrize("host", ["example.com", "localhost.example.com", "notlocalhost",
                                  "bindrop.localhost.test", "127.0.0.1", ""])
def test_other_names_are_left_to_the_resolver(host: str) -> None:
    assert loopback_for(host) is None


async def test_the_resolver_answers_localhost_names_without_asking_nss() -> None:
    resolver = LocalhostResolver()
    try:
        [answer] = await resolver.resolve("bindrop.localhost", 8080)
    finally:
        await resolver.close()
    assert (answer["host"], answer["port"], answer["family"]) == ("127.0.0.1", 8080,
                                                                  socket.AF_INET)
