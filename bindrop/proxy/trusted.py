"""Which peers are trusted proxies (``--trusted-proxies``): a load balancer or CDN in front
of this server, whose ``X-Forwarded-*`` and ``Forwarded`` headers are kept. Pure."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from bindrop.errors import InvalidInput

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(text: str | Iterable[str]) -> tuple[Network, ...]:
    """``10.0.0.0/8,2001:db8::/32`` (or a list of such) as networks; a bare address is a
    network of one. Raises InvalidInput."""
    items = text.split(",") if isinstance(text, str) else list(text)
    networks = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise InvalidInput(f"trusted proxy {item!r} is not an address or CIDR "
                               "network: use e.g. 10.0.0.0/8 or 2001:db8::1") from None
    return tuple(networks)


class TrustedProxies:
    """Answers "is this peer a trusted proxy", cached per address (few peers talk to a
    proxy behind a load balancer; the cache is bounded anyway)."""

    def __init__(self, networks: Iterable[Network] = ()) -> None:
        self.networks = tuple(networks)
        self._check = functools.lru_cache(maxsize=4096)(self._contains)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def peer_is_trusted(self, address: str | None) -> bool:
        if not self.networks or not address:
            return False
        return self._check(address)

    def _contains(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)
