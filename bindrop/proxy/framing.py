"""What a request's head means for its framing and routing, decided once. Pure.

llhttp has already refused what it cannot read (bare CR, CL with TE, ``chunked`` not last…).
This adds nginx's (and RFC 9112's) refusals for heads llhttp reads but two parsers could
still read differently, so that what goes upstream is written from this decision, never
copied from the visitor's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from bindrop.proxy.headers import RawHeaders


class Refusal(Exception):
    """A request head the proxy answers itself, with ``status``, and then closes."""

    def __init__(self, status: int, reason: str, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.reason = reason


@dataclass(slots=True)
class RequestFraming:
    #: The Host the request is for (from an absolute-form target if it had one).
    host: bytes | None = None
    #: The body's length when given by Content-Length (0 included).
    content_length: int | None = None
    chunked: bool = False
    expect_continue: bool = False
    #: The target to send upstream (origin-form), when it differs from the one sent.
    target: bytes | None = None


_BAD = "Bad Request"


def parse_request_framing(method: str, target: bytes, version: str,
                          headers: RawHeaders) -> RequestFraming:
    """The framing of a request head llhttp accepted; raises ``Refusal`` for one the
    proxy will not forward."""
    if version not in ("1.1", "1.0"):
        raise Refusal(505, "HTTP Version Not Supported", f"HTTP/{version}")
    framing = RequestFraming()
    hosts = lengths = 0
    codings: list[bytes] = []
    for name, value in headers:
        size = len(name)
        if size == 4 and name.lower() == b"host":
            hosts += 1
            framing.host = value.strip()
        elif size == 14 and name.lower() == b"content-length":
            lengths += 1
            digits = value.strip(b" \t")
            if not digits.isdigit() or len(digits) > 18:
                raise Refusal(400, _BAD, "a Content-Length that is not a length")
            framing.content_length = int(digits)
        elif size == 17 and name.lower() == b"transfer-encoding":
            codings += [c.strip(b" \t").lower() for c in value.split(b",")]
        elif size == 6 and name.lower() == b"expect":
            framing.expect_continue = value.strip().lower() == b"100-continue"
    if hosts > 1:
        raise Refusal(400, _BAD, "two Host headers")
    if lengths > 1:
        raise Refusal(400, _BAD, "two Content-Length headers")
    if codings:
        if version == "1.0":
            raise Refusal(400, _BAD, "Transfer-Encoding in an HTTP/1.0 request")
        if codings != [b"chunked"]:
            raise Refusal(501, "Not Implemented", "a transfer coding other than chunked")
        if framing.content_length is not None:
            raise Refusal(400, _BAD, "both Content-Length and Transfer-Encoding")
        framing.chunked = True
    framing.expect_continue = framing.expect_continue and version == "1.1"
    if not target.startswith(b"/"):
        _check_target(method, target, framing)
    if version == "1.1" and not framing.host:
        raise Refusal(400, _BAD, "an HTTP/1.1 request without a Host")
    return framing


def _check_target(method: str, target: bytes, framing: RequestFraming) -> None:
    # (``OPTIONS *`` too: it asks about the server, which is no app's business; nginx
    # refuses it the same way.)
    lowered = target[:8].lower()
    if not (lowered.startswith(b"http://") or lowered.startswith(b"https://")):
        raise Refusal(400, _BAD, "a request target that is not a path")
    rest = target[target.index(b"//") + 2:]
    cut = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:]
    if not authority or b"@" in authority:
        raise Refusal(400, _BAD, "an absolute target without a plain host")
    if framing.host is not None and framing.host.lower() != authority.lower():
        raise Refusal(400, _BAD, "an absolute target for another host than Host")
    framing.host = authority
    framing.target = path if path.startswith(b"/") else b"/" + path

