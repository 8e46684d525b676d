"""The route table the hub sends to proxies: desired hosts plus live routes. Pure.

Built whole from every app's config (hosts, maintenance message, body limit, on-demand) and
the state store's views (status, routed unit and port), as the JSON the proxies read
(``bindrop.client.protocol`` parses it). Two apps claiming one host (+ prefix) is a conflict:
the first by name keeps it and the conflict is reported, so one bad row cannot take a
working site away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bindrop.hub.state import AppRunState, AppView
from bindrop.store import AppConfig


@dataclass(frozen=True)
class HostConflict:
    host: str
    kept_by: str
    refused: str

    def describe(self) -> str:
        return (f"host {self.host} is claimed by {self.kept_by!r} and {self.refused!r}; "
                f"{self.kept_by!r} keeps it until {self.refused!r} lets it go")


def build_route_table(apps: Sequence[AppConfig], views: Mapping[str, AppView]
                      ) -> tuple[list[dict[str, Any]], list[HostConflict]]:
    """Every app as a table entry (sorted by name), and the host conflicts found."""
    owners: dict[str, str] = {}
    conflicts: list[HostConflict] = []
    entries = []
    for config in sorted(apps, key=lambda a: a.name):
        hosts = []
        for host in config.hosts:
            owner = owners.setdefault(host, config.name)
            if owner == config.name:
                hosts.append(host)
            else:
                conflicts.append(HostConflict(host, owner, config.name))
        entries.append(build_entry(config, tuple(dict.fromkeys(hosts)), views.get(config.name)))
    return entries, conflicts


def build_entry(config: AppConfig, hosts: tuple[str, ...], view: AppView | None
                ) -> dict[str, Any]:
    state = view.state if view is not None else AppRunState.STOPPED
    route = view.route if view is not None else None
    return {
        "app": config.name,
        "hosts": list(hosts),
        "status": str(state),
        "upstream": None if route is None else {
            "unit": route.unit, "release": route.instance, "port": route.port},
        "maintenance_message": config.maintenance_message,
        "body_limit": config.body_limit,
        "on_demand": config.on_demand,
    }
