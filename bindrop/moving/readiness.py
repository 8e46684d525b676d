"""Is an app served on the new server? Asked through that server's proxy, by hostname."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

#: What the proxy answers for a host no route knows (bindrop.proxy.forward), not an app.
NO_ROUTE_TEXT = b"No app answers on"


@dataclass(frozen=True)
class Probe:
    """One request to make: ``GET path`` with ``Host: host`` at ``address:port``."""

    app: str
    host: str
    path: str


def plan_probes(app: str, hosts: Sequence[str], health_path: str | None) -> list[Probe]:
    """One probe per host of the app: ``host[/prefix]`` + its health path (or /). Pure;
    wildcard hosts (``*.example.com``) are skipped, there is no one name to ask for."""
    probes = []
    for entry in hosts:
        host, _, prefix = entry.partition("/")
        if host.startswith("*."):
            continue
        path = "/" + "/".join(p.strip("/") for p in (prefix, health_path or "") if p.strip("/"))
        probes.append(Probe(app, host, path))
    return probes


def is_served(status: int, body: bytes) -> bool:
    """Whether the app answered: any status below 500 that is not the proxy's "no route"
    404. A 5xx is the proxy saying the app is not up (502, 503, 504), or an app or proxy
    failing: not ready either way. Pure."""
    if status >= 500:
        return False
    return not (status == 404 and NO_ROUTE_TEXT in body)


def ask(address: str, port: int, probe: Probe, timeout: float = 5.0) -> bool:
    """Send the probe (no proxy settings from the environment apply); False if unanswered."""
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", probe.path, headers={"Host": probe.host})
        answer = conn.getresponse()
        return is_served(answer.status, answer.read(4096))
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def wait_until_served(address: str, port: int, probes: Sequence[Probe], timeout: float,
                      ask_one: Callable[[str, int, Probe], bool] = ask,
                      progress: Callable[[str], None] = lambda _m: None) -> Mapping[str, bool]:
    """Ask every probe until each has been served once or ``timeout`` passes; return, per
    app, whether all its probes were served."""
    pending = list(probes)
    deadline = time.monotonic() + timeout
    while pending:
        pending = [p for p in pending if not ask_one(address, port, p)]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for p in pending:
        progress(f"{p.app} did not answer at http://{p.host}{p.path} through {address}:{port}")
    failed = {p.app for p in pending}
    return {p.app: p.app not in failed for p in probes}
