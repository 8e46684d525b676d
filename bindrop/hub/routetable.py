"""The route table the hub sends to proxies: desired hosts plus live routes. Pure.

Built whole from every app's config (hosts, maintenance message, body limit, on-demand) and
the state store's views (status, routed unit and port), as the wire's ``AppRoute`` entries
(``bindrop.client.proxywire`` renders them for the proxies). Two apps claiming one host
(+ prefix) is a conflict: the first by name keeps it and the conflict is reported, so one
bad row cannot take a working site away.

With a ``ControlRoute`` the table also holds a system entry: the control host to the TCP
control API on 127.0.0.1, forwarded like any app (the API itself asks for a token; the
proxy adds no trust). It comes first and its host is bindrop's: an app that claims it
(or a path under it) is refused by ``check_hosts_free`` and, should one be stored already,
left out and reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bindrop.client.proxywire import AppRoute, Upstream
from bindrop.domain.hosts import parse_host
from bindrop.errors import Conflict
from bindrop.hub.state import AppRunState, AppView
from bindrop.store import AppConfig

#: The control route's name in the table (and the proxy's access log): not a valid app
#: name, so it can be no app's.
CONTROL_ENTRY = "bindrop:control"
#: The unit the control route's requests count as in flight to (the hub never drains it).
CONTROL_UNIT = "bindrop.service"


@dataclass(frozen=True)
class HostConflict:
    host: str
    kept_by: str
    refused: str

    def describe(self) -> str:
        return (f"host {self.host} is claimed by {self.kept_by!r} and {self.refused!r}; "
                f"{self.kept_by!r} keeps it until {self.refused!r} lets it go")


@dataclass(frozen=True)
class ControlRoute:
    """The control host, the API's TCP port on 127.0.0.1, and the largest body it takes."""

    host: str
    port: int
    body_limit: int


def check_hosts_free(hosts: Iterable[str], control_host: str) -> None:
    """``Conflict`` if any of ``hosts`` (with or without a path) is the control host. Pure;
    ``InvalidInput`` for a host that is not valid at all."""
    for host in hosts:
        if parse_host(host).partition("/")[0] == control_host:
            raise Conflict(f"host {host} is where bindrop serves its control API "
                           f"(BINDROP_CONTROL_HOST); choose another host for the app")


def build_route_table(apps: Sequence[AppConfig], views: Mapping[str, AppView],
                      control: ControlRoute | None = None
                      ) -> tuple[list[AppRoute], list[HostConflict]]:
    """The control route (if any) then every app as a table entry (sorted by name), and the
    host conflicts found."""
    owners: dict[str, str] = {}
    conflicts: list[HostConflict] = []
    entries = []
    if control is not None:
        entries.append(build_control_entry(control))
    for config in sorted(apps, key=lambda a: a.name):
        hosts = []
        for host in config.hosts:
            if control is not None and host.partition("/")[0] == control.host:
                conflicts.append(HostConflict(host, CONTROL_ENTRY, config.name))
                continue
            owner = owners.setdefault(host, config.name)
            if owner == config.name:
                hosts.append(host)
            else:
                conflicts.append(HostConflict(host, owner, config.name))
        entries.append(build_entry(config, tuple(dict.fromkeys(hosts)), views.get(config.name)))
    return entries, conflicts


def build_entry(config: AppConfig, hosts: tuple[str, ...], view: AppView | None
                ) -> AppRoute:
    state = view.state if view is not None else AppRunState.STOPPED
    serving = view.serving if view is not None else ()
    # "upstream" is the first serving web instance (proxies before balancing read only it);
    # "upstreams" all of them, which the proxy balances across.
    route = serving[0] if serving else None
    if view is not None and not view.instances:  # a view the hub built before instances
        route = view.route
    elif (view is not None and not serving and state == AppRunState.RUNNING
          and any(r.web for r in view.instances)):
        # web instances exist, none runs right now (workers may): they are restarting
        state = AppRunState.RESTARTING
    return AppRoute(
        app=config.name,
        hosts=hosts,
        status=str(state),
        upstream=None if route is None else Upstream(route.unit, route.instance, route.port),
        upstreams=tuple(Upstream(r.unit, r.instance, r.port) for r in serving),
        maintenance_message=config.maintenance_message,
        body_limit=config.body_limit,
        on_demand=config.on_demand,
        https_redirect=config.https_redirect,
        hold=view is not None and view.holding,
    )


def build_control_entry(control: ControlRoute) -> AppRoute:
    """The control API as a table entry: always running (the table comes from the hub that
    serves it); its requests pass through the proxy untouched, tokens included."""
    return AppRoute(
        app=CONTROL_ENTRY,
        hosts=(control.host,),
        status=str(AppRunState.RUNNING),
        upstream=Upstream(CONTROL_UNIT, "api", control.port),
        maintenance_message=None,
        body_limit=control.body_limit,
        on_demand=False,
    )
