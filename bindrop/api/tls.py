"""Automatic HTTPS: set up (which CA, which email), list names, renew, turn off.

Every route answers from the hub's ``TlsManager``; a hub without one (a test hub, no proxies)
answers 409 saying so. Renewing waits for the CA (bounded per name by the ACME flow's own
timeouts) and answers with the names' states afterwards.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from bindrop.api.bodies import only, read_json
from bindrop.api.keys import HUB
from bindrop.api.views import event_dict
from bindrop.errors import Conflict, InvalidInput
from bindrop.hub.tls import TLS_EVENTS, TlsManager
from bindrop.store import Store

#: Largest CA bundle accepted for --directory-ca.
CA_BUNDLE_MAX = 256 * 1024


def _manager(request: web.Request) -> TlsManager:
    manager = request.app[HUB].tls
    if manager is None:
        raise Conflict("this hub runs without proxies, so it has no automatic HTTPS; "
                       "use bindrop hub (bindrop.service)")
    return manager


def tls_summary(tls: TlsManager | None, store: Store) -> dict[str, Any] | None:
    """For ``bindrop status``: on or off, how many names in each state, the newest TLS event
    and the newest failure (with the CA's reason). None on a hub without automatic HTTPS."""
    if tls is None:
        return None
    counts: dict[str, int] = {}
    for name in tls.list_names():
        counts[name["state"]] = counts.get(name["state"], 0) + 1
    last, failure = store.last_event_of(TLS_EVENTS), store.last_event_of(["tls_failed"])
    return {"enabled": store.get_tls_settings().enabled, "states": counts,
            "last_event": event_dict(last) if last else None,
            "last_failure": event_dict(failure) if failure else None}


async def show_tls(request: web.Request) -> dict[str, Any]:
    return _manager(request).describe()


async def setup_tls(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    only(body, {"email", "directory", "directory_ca", "staging"}, "the HTTPS settings")
    directory, ca, staging = body.get("directory"), body.get("directory_ca"), \
        body.get("staging", False)
    if directory is not None and not isinstance(directory, str):
        raise InvalidInput("directory must be the ACME directory's https:// URL")
    if ca is not None and (not isinstance(ca, str) or len(ca) > CA_BUNDLE_MAX):
        raise InvalidInput(f"directory_ca must be PEM text of at most {CA_BUNDLE_MAX} bytes")
    if not isinstance(staging, bool):
        raise InvalidInput("staging must be true or false")
    return _manager(request).setup(body.get("email"),  # type: ignore[arg-type]
                                   directory, ca, staging)


async def disable_tls(request: web.Request) -> dict[str, Any]:
    return _manager(request).off()


async def renew_tls(request: web.Request) -> dict[str, Any]:
    body = await read_json(request, required=False)
    only(body, {"name", "force"}, "a renewal")
    name, force = body.get("name"), body.get("force", False)
    if name is not None and not isinstance(name, str):
        raise InvalidInput("name must be a host name, or null for every name")
    if not isinstance(force, bool):
        raise InvalidInput("force must be true or false")
    # Shielded: a client that goes away must not cut an order in the middle.
    names = await asyncio.shield(_manager(request).renew(name, force=force))
    return {"names": names}
