"""Header rules of the proxy. Pure: the handler only streams what these return.

Hop-by-hop headers (RFC 9110 7.6.1: the fixed set plus whatever ``Connection`` names) are
for one connection and never forwarded either way; ``Connection`` can never name the framing
(Content-Length, Transfer-Encoding) or Host, and the framing sent upstream is the proxy's own
(``render_request_head``), never the visitor's bytes. The proxy is the edge: upstream
requests carry ``X-Forwarded-For`` (the visitor's address), ``X-Forwarded-Proto``,
``X-Forwarded-Host`` and an RFC 7239 ``Forwarded`` *set* here, whatever the visitor sent
(Caddy's default: an appended chain's leftmost entry is the visitor's to choose), unless the
connection comes from a trusted proxy (``--trusted-proxies``): then its chain is kept and
extended. Underscore spellings of those names (``X_Forwarded_For``, which many app servers
read as the dashed one) are dropped. An ``X-Request-Id`` is kept when the client sent a sane
one, else new.

Headers stay bytes, as on the wire (names as sent, order and repeats kept): nothing is
decoded and encoded again per request.
"""

from __future__ import annotations

import re
from collections.abc import Callable

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization",
    b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade",
})
REQUEST_ID = "X-Request-Id"
_REQUEST_ID_OK = re.compile(r"[A-Za-z0-9._:@/+=-]{1,200}")
#: Set by the proxy (it is the edge): what a visitor sends of these is dropped.
_SET_HERE = frozenset({b"x-forwarded-proto", b"x-forwarded-host", b"x-request-id",
                       b"x-forwarded-for", b"forwarded", b"x-real-ip"})
#: Never copied upstream: the proxy writes the framing from what its parser decided.
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})
_DROP_UPSTREAM = HOP_BY_HOP | _SET_HERE | _FRAMING
_DOWNSTREAM_DECIDED = HOP_BY_HOP | _FRAMING
#: What ``Connection`` may never name (dropping them would desync framing or routing).
_NEVER_NAMED = frozenset({b"host", b"content-length", b"transfer-encoding"})
#: Underscore spellings dropped from requests: those that app servers mapping ``-`` and
#: ``_`` to one name (CGI, WSGI, Rack) would read as one of these.
_UNDERSCORED = frozenset(name.replace(b"-", b"_") for name in
                         _SET_HERE | _FRAMING | {b"host", b"connection"})

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
            - HOP_BY_HOP - _NEVER_NAMED - {b""}
        if len(_CONNECTION_NAMES) < 256:
            _CONNECTION_NAMES[connection] = named
    return drop | named if named else drop


def build_upstream_headers(headers: RawHeaders, *, client: str | None, scheme: str,
                           request_id: str, host: bytes | None = None,
                           trusted: bool = False, visitor: str | None = None) -> RawHeaders:
    """The headers to send upstream for a request that came in with ``headers`` from
    ``client`` (its address as seen here), without framing (``render_request_head`` adds
    it). ``host``: the Host the request was routed by (as the framing decided it), which
    replaces the one sent. ``trusted``: the peer is a trusted proxy, whose forwarding
    headers are kept (its address appended to ``X-Forwarded-For`` and ``Forwarded``).
    ``X-Real-IP`` is ``visitor`` (default: ``client``)."""
    drop = hop_by_hop(headers, _DROP_UPSTREAM)  # (a trusted chain is rebuilt below)
    out: RawHeaders = [] if host is None else [(b"Host", host)]
    sent_host = None
    for name, value in headers:
        lowered = name.lower()
        if lowered in drop or (b"_" in lowered and lowered in _UNDERSCORED):
            continue
        if lowered == b"host":
            sent_host = value
            continue
        out.append((name, value))
    if host is None and sent_host is not None:
        host = sent_host
        out.insert(0, (b"Host", host))
    if trusted:
        out += _build_trusted_chain(headers, client, scheme, host, visitor)
    else:
        out += _build_edge_headers(client, scheme, host)
    out.append((b"X-Request-Id", request_id.encode()))
    return out


#: The edge's forwarding headers per (client, scheme, host): the same few visitors ask
#: for the same few hosts, so these are built once, not per request (bounded).
_EDGE_HEADERS: dict[tuple[str | None, str, bytes | None], RawHeaders] = {}


def _build_edge_headers(client: str | None, scheme: str, host: bytes | None) -> RawHeaders:
    key = (client, scheme, host)
    cached = _EDGE_HEADERS.get(key)
    if cached is not None:
        return cached
    address = client.encode() if client else None
    out: RawHeaders = []
    if address is not None:
        out.append((b"X-Forwarded-For", address))
    out.append((b"X-Forwarded-Proto", scheme.encode()))
    if host:
        out.append((b"X-Forwarded-Host", host))
    out.append((b"Forwarded", render_forwarded(address, scheme, host)))
    if address is not None:
        out.append((b"X-Real-IP", address))
    if len(_EDGE_HEADERS) >= 4096:
        _EDGE_HEADERS.clear()
    _EDGE_HEADERS[key] = out
    return out


def _build_trusted_chain(headers: RawHeaders, client: str | None, scheme: str,
                         host: bytes | None, visitor: str | None) -> RawHeaders:
    """A trusted proxy's forwarding headers, extended by this hop."""
    chain = b", ".join(value.strip() for name, value in headers
                       if name.lower() == b"x-forwarded-for")
    forwarded = b", ".join(value.strip() for name, value in headers
                           if name.lower() == b"forwarded")
    address = client.encode() if client else None
    out: RawHeaders = []
    if address is not None:
        out.append((b"X-Forwarded-For", address if not chain else chain + b", " + address))
    proto = get_header(headers, b"x-forwarded-proto")
    out.append((b"X-Forwarded-Proto", proto if proto is not None else scheme.encode()))
    forwarded_host = get_header(headers, b"x-forwarded-host") or host
    if forwarded_host:
        out.append((b"X-Forwarded-Host", forwarded_host))
    element = render_forwarded(address, scheme, host)
    out.append((b"Forwarded", element if not forwarded else forwarded + b", " + element))
    real = visitor or client
    if real:
        out.append((b"X-Real-IP", real.encode()))
    return out


def render_forwarded(address: bytes | None, scheme: str, host: bytes | None) -> bytes:
    """One RFC 7239 ``Forwarded`` element for this hop. Pure."""
    if address is None:
        parts = [b"for=unknown"]
    elif b":" in address:  # IPv6: quoted and bracketed
        parts = [b'for="[' + address + b']"']
    else:
        parts = [b"for=" + address]
    if host:
        parts.append(b'host="' + host.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"')
    parts.append(b"proto=" + scheme.encode())
    return b";".join(parts)


def pick_client(peer: str | None, headers: RawHeaders,
                trusted: Callable[[str], bool]) -> str | None:
    """The visitor's address for a request from ``peer``: the peer itself, or when the
    peer is a trusted proxy, the rightmost address of its ``X-Forwarded-For`` chain that
    is not a trusted proxy too. Pure."""
    if peer is None or not trusted(peer):
        return peer
    chain = [item.strip().decode("latin-1") for key, value in headers
             if key.lower() == b"x-forwarded-for" for item in value.split(b",")]
    for address in reversed(chain):
        if address and not trusted(address):
            return address
    return chain[0] if chain and chain[0] else peer


def build_downstream_headers(headers: RawHeaders, request_id: str, *,
                             decided: bool = False, length: int | None = None
                             ) -> RawHeaders:
    """The headers to answer the client with, from the upstream's response ``headers``.
    ``decided``: the framing is the parser's decision, not the app's bytes: the app's
    Content-Length is dropped and ``length`` (if any) written instead."""
    drop = hop_by_hop(headers, _DOWNSTREAM_DECIDED if decided else HOP_BY_HOP)
    out: RawHeaders = []
    has_id = False
    for name, value in headers:
        lowered = name.lower()
        if lowered not in drop:
            out.append((name, value))
            has_id = has_id or lowered == b"x-request-id"
    if length is not None:
        out.append((b"Content-Length", b"%d" % length))
    if not has_id:
        out.append((b"X-Request-Id", request_id.encode()))
    return out


def build_interim_headers(headers: RawHeaders) -> RawHeaders:
    """The headers of a 1xx answer (103 Early Hints) to pass on: hop-by-hop ones
    dropped."""
    drop = hop_by_hop(headers, _DOWNSTREAM_DECIDED)
    return [(name, value) for name, value in headers if name.lower() not in drop]


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
