"""The proxy's route lookup: (host, path) -> app. Pure and immutable; swapped whole.

Built once per route table the hub sends. A host may carry a path prefix
(``example.com/api``); the longest prefix that matches whole path segments wins, and a host
without a prefix catches the rest. The path is matched as sent (raw) and never rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bindrop.client.proxywire import AppRoute, RouteTable
from bindrop.proxy.headers import request_host


@dataclass(frozen=True)
class Lookup:
    table: RouteTable = field(default_factory=lambda: RouteTable(0))
    #: host -> ((prefix, app), ...), longest prefix first; "" is "no prefix".
    by_host: Mapping[str, tuple[tuple[str, AppRoute], ...]] = field(default_factory=dict)

    @property
    def version(self) -> int:
        return self.table.version


def build_lookup(table: RouteTable) -> Lookup:
    """Index ``table`` by host. A host (+ prefix) listed twice keeps its first app."""
    found: dict[str, dict[str, AppRoute]] = {}
    for app in table.apps:
        for entry in app.hosts:
            name, slash, prefix = entry.partition("/")
            found.setdefault(name.lower(), {}).setdefault(f"/{prefix}" if slash else "", app)
    return Lookup(table, {
        host: tuple(sorted(prefixes.items(), key=lambda item: -len(item[0])))
        for host, prefixes in found.items()})


def match_route(lookup: Lookup, host: str | None, raw_path: str) -> AppRoute | None:
    """The app that answers ``raw_path`` on ``host`` (a ``Host`` header), or None."""
    candidates = lookup.by_host.get(request_host(host))
    if not candidates:
        return None
    path = raw_path.split("?", 1)[0]
    for prefix, app in candidates:
        if not prefix or path == prefix or path.startswith(prefix + "/"):
            return app
    return None
