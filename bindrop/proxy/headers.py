"""Header rules of the proxy. Pure: the handler only streams what these return.

Hop-by-hop headers (RFC 9110 7.6.1: the fixed set plus whatever ``Connection`` names) are
for one connection and never forwarded either way. Upstream requests carry
``X-Forwarded-For`` (the client appended to what came in), ``X-Forwarded-Proto`` and
``X-Forwarded-Host`` (set: the proxy is the edge) and an ``X-Request-Id`` (kept when the client
sent a sane one, else new).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from multidict import CIMultiDict, CIMultiDictProxy

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
})
REQUEST_ID = "X-Request-Id"
_REQUEST_ID_OK = re.compile(r"[A-Za-z0-9._:@/+=-]{1,200}")

Headers = CIMultiDict[str] | CIMultiDictProxy[str]


def hop_by_hop(headers: Headers) -> frozenset[str]:
    """Lowercased names not to forward: the fixed set and those ``Connection`` lists."""
    named = {token.strip().lower() for value in headers.getall("Connection", ())
             for token in value.split(",") if token.strip()}
    return HOP_BY_HOP | named


def without_hop_by_hop(headers: Headers, also: Iterable[str] = ()) -> CIMultiDict[str]:
    """A copy of ``headers`` (order and repeats kept) without hop-by-hop ones or ``also``."""
    drop = hop_by_hop(headers) | {name.lower() for name in also}
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in drop)


def build_upstream_headers(headers: Headers, *, client: str | None, scheme: str,
                           request_id: str) -> CIMultiDict[str]:
    """The headers to send upstream for a request that came in with ``headers``."""
    out = without_hop_by_hop(headers, also=("X-Forwarded-Proto", "X-Forwarded-Host",
                                            REQUEST_ID, "X-Forwarded-For"))
    chain = [v.strip() for v in headers.getall("X-Forwarded-For", ()) if v.strip()]
    if client:
        chain.append(client)
    if chain:
        out["X-Forwarded-For"] = ", ".join(chain)
    out["X-Forwarded-Proto"] = scheme
    host = headers.get("Host")
    if host:
        out["X-Forwarded-Host"] = host
    out[REQUEST_ID] = request_id
    return out


def build_downstream_headers(headers: Headers, request_id: str) -> CIMultiDict[str]:
    """The headers to answer the client with, from the upstream's response ``headers``."""
    out = without_hop_by_hop(headers)
    out.setdefault(REQUEST_ID, request_id)
    return out


def pick_request_id(headers: Headers, new: str) -> str:
    """The client's ``X-Request-Id`` if it is short and plain, else ``new``."""
    given = headers.get(REQUEST_ID, "")
    return given if _REQUEST_ID_OK.fullmatch(given) else new


def response_has_body(method: str, status: int) -> bool:
    """False for HEAD and for statuses that never carry a body (1xx, 204, 304)."""
    return method != "HEAD" and not (100 <= status < 200 or status in (204, 304))


def is_websocket_upgrade(headers: Headers) -> bool:
    connection = {t.strip().lower() for v in headers.getall("Connection", ())
                  for t in v.split(",")}
    return "upgrade" in connection and headers.get("Upgrade", "").lower() == "websocket"


def request_host(host: str | None) -> str:
    """The name a ``Host`` header asks for: lowercased, without port or trailing dot."""
    if not host:
        return ""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal, perhaps with a port
        return host[: host.find("]") + 1] if "]" in host else host
    name = host.rsplit(":", 1)[0] if ":" in host else host
    return name.rstrip(".")


def build_https_location(host: str | None, raw_path: str, https_port: int = 443) -> str:
    """Where a plain-HTTP request is redirected for an app with ``https_redirect``: the same
    host (without the HTTP port) and the raw path and query byte for byte, on ``https_port``
    (left out when 443). Pure."""
    name = request_host(host)
    port = "" if https_port == 443 else f":{https_port}"
    path = raw_path if raw_path.startswith("/") else "/" + raw_path
    return f"https://{name}{port}{path}"
