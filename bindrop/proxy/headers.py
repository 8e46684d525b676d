"""Header rules of the proxy. Pure: the handler only streams what these return.

Hop-by-hop headers (RFC 9110 7.6.1: the fixed set plus whatever ``Connection`` names) are
for one connection and never forwarded either way. Upstream requests carry
``X-Forwarded-For`` (the client appended to what came in), ``X-Forwarded-Proto`` and
``X-Forwarded-Host`` (set: the proxy is the edge) and an ``X-Request-Id`` (kept when the client
sent a sane one, else new).

Headers stay bytes, as on the wire (names as sent, order and repeats kept): nothing is
decoded and encoded again per request.
"""

from __future__ import annotations

import re

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization",
    b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade",
})
REQUEST_ID = "X-Request-Id"
_REQUEST_ID_OK = re.compile(r"[A-Za-z0-9._:@/+=-]{1,200}")
#: Set by the proxy (it is the edge): what a visitor sends of these is dropped.
_SET_HERE = frozenset({b"x-forwarded-proto", b"x-forwarded-host", b"x-request-id",
                       b"x-forwarded-for"})
_DROP_UPSTREAM = HOP_BY_HOP | _SET_HERE

#: Headers as they are on the wire: (name, value) in order, repeats kept, names as sent.
RawHeaders = list[tuple[bytes, bytes]]


def get_header(headers: RawHeaders, name: bytes) -> bytes | None:
    """The first value of ``name`` (lowercase), or None."""
    for key, value in headers:
        if len(key) == len(name) and key.lower() == name:
            return value
    return None


def hop_by_hop(headers: RawHeaders, base: frozenset[bytes] = HOP_BY_HOP) -> frozenset[bytes]:
    """Lowercased names not to forward: ``base`` (the fixed set) and those ``Connection``
    lists."""
    drop = base
    for key, value in headers:
        if len(key) == 10 and key.lower() == b"connection":
            drop = _drop_also(drop, value)
    return drop


#: What a ``Connection`` value names beyond the fixed set, by value as sent: nearly every
#: request and answer sends one of a few values (``keep-alive``, ``close``, ``Upgrade``).
_CONNECTION_NAMES: dict[bytes, frozenset[bytes]] = {}


def _drop_also(drop: frozenset[bytes], connection: bytes) -> frozenset[bytes]:
    named = _CONNECTION_NAMES.get(connection)
    if named is None:
        named = frozenset(token.strip().lower() for token in connection.split(b",")) \
            - HOP_BY_HOP - {b""}
        if len(_CONNECTION_NAMES) < 256:
            _CONNECTION_NAMES[connection] = named
    return drop | named if named else drop


def build_upstream_headers(headers: RawHeaders, *, client: str | None, scheme: str,
                           request_id: str) -> RawHeaders:
    """The headers to send upstream for a request that came in with ``headers``."""
    drop = hop_by_hop(headers, _DROP_UPSTREAM)
    out: RawHeaders = []
    chain: list[bytes] = []
    host = None
    for name, value in headers:
        lowered = name.lower()
        if lowered in drop:
            if lowered == b"x-forwarded-for" and value.strip():
                chain.append(value.strip())
            continue
        if lowered == b"host":
            host = value
        out.append((name, value))
    if client:
        chain.append(client.encode())
    if chain:
        out.append((b"X-Forwarded-For", b", ".join(chain)))
    out.append((b"X-Forwarded-Proto", scheme.encode()))
    if host:
        out.append((b"X-Forwarded-Host", host))
    out.append((b"X-Request-Id", request_id.encode()))
    return out


def build_downstream_headers(headers: RawHeaders, request_id: str) -> RawHeaders:
    """The headers to answer the client with, from the upstream's response ``headers``."""
    drop = hop_by_hop(headers)
    out: RawHeaders = []
    has_id = False
    for name, value in headers:
        lowered = name.lower()
        if lowered not in drop:
            out.append((name, value))
            has_id = has_id or lowered == b"x-request-id"
    if not has_id:
        out.append((b"X-Request-Id", request_id.encode()))
    return out


def pick_request_id(given: bytes | None, new: str) -> str:
    """The client's ``X-Request-Id`` value if it is short and plain, else ``new``."""
    if given:
        text = given.decode("latin-1")
        if _REQUEST_ID_OK.fullmatch(text):
            return text
    return new


def response_has_body(method: str, status: int) -> bool:
    """False for HEAD and for statuses that never carry a body (1xx, 204, 304)."""
    return method != "HEAD" and not (100 <= status < 200 or status in (204, 304))


def is_websocket_upgrade(headers: RawHeaders) -> bool:
    connection = {t.strip().lower() for k, v in headers if k.lower() == b"connection"
                  for t in v.split(b",")}
    return b"upgrade" in connection \
        and (get_header(headers, b"upgrade") or b"").lower() == b"websocket"


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
