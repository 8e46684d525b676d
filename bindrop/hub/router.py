"""Publishing routes and draining old releases: the hub's side of the proxy protocol.

The hub calls ``publish`` at the flip and ``drain`` before stopping an old unit. With no
proxy connected both return at once; connected proxies (the proxy issue) confirm the swap
and report when a release has no request in flight.
"""

from __future__ import annotations

from typing import Protocol

from bindrop.hub.state import Route, StateStore

Routes = Route | tuple[Route, ...] | None


def as_routes(routes: Routes) -> tuple[Route, ...]:
    """One route, several or none, as a tuple."""
    if routes is None:
        return ()
    return (routes,) if isinstance(routes, Route) else tuple(routes)


class RoutePublisher(Protocol):
    """Makes an app's live instances what the proxies route to, and drains old ones."""

    async def publish(self, app: str, route: Routes) -> None:
        """Make ``route`` (the app's live instances; None: none) what every proxy serves."""
        ...

    async def drain(self, route: Route, timeout: float) -> None: ...

    def peers(self) -> list[str]:
        """The proxies following the routes now (their ids)."""
        ...


class StateRoutePublisher:
    """Routes live in the state store; no proxy to wait for (a hub without proxies)."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    async def publish(self, app: str, route: Routes) -> None:
        self.state.set_routes(app, as_routes(route))

    async def drain(self, route: Route, timeout: float) -> None:
        return None

    def peers(self) -> list[str]:
        return []
