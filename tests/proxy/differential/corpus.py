"""The corpus: raw requests and raw app answers, each with what a correct proxy forwards.

Every case of issue #13, the classic request-smuggling mutations (CL.TE, TE.CL, TE.TE),
malformed heads (obs-fold, bare LF, NUL and control bytes), lengths out of range, pipelining,
HTTP/1.0 keep-alive, 100-continue, upgrades, and answers that try to poison the pooled
connection. ``nginx=`` pins what nginx (Debian's 1.22) answered: the suite still runs nginx
every time and checks that it still does.
"""

from __future__ import annotations

from .harness import Case, Expected

HOST = b"Host: app.test\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n"


def get(target: str = "/", extra: bytes = b"", version: bytes = b"1.1") -> bytes:
    return b"GET %s HTTP/%s\r\n%s%s\r\n" % (target.encode(), version, HOST, extra)


def chunked(*pieces: bytes, trailers: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n" + trailers \
        + b"\r\n"


def post(target: str, body: bytes, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n%s\r\n%s" % (
        target.encode(), HOST, len(body), extra, body)


GET = Expected("GET", "/")


def refused(name: str, raw: bytes, nginx: str | None = "400", **kw: object) -> Case:
    """A request nginx refuses: a correct proxy forwards nothing of it. ``expect`` names what
    the app may see if the proxy reads it in the one sane way (never anything else)."""
    expect = kw.pop("expect", ())
    return Case(name, (raw,), expect=expect, requests=1, nginx=nginx, **kw)  # type: ignore[arg-type]


def te_cl(name: str, te_line: bytes, nginx: str | None) -> Case:
    """A TE.TE mutation: an obfuscated Transfer-Encoding next to a Content-Length, with a
    smuggled request hidden where the two readings differ."""
    body = b"0\r\n\r\n" + SMUGGLED
    raw = b"POST /te HTTP/1.1\r\n" + HOST + b"Content-Length: %d\r\n" % len(body) + te_line \
        + b"\r\n" + body
    return Case(name, (raw,), expect=(), requests=1, nginx=nginx)


REQUESTS: list[Case] = [
    # -- plain, valid requests: every proxy forwards them exactly -------------------------
    Case("plain GET", (get(),), (GET,), valid=True, nginx="200"),
    Case("POST with a Content-Length", (post("/p", b"hello"),),
         (Expected("POST", "/p", b"hello"),), valid=True, nginx="200"),
    Case("POST chunked", (b"POST /c HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
                          + chunked(b"hel", b"lo"),),
         (Expected("POST", "/c", b"hello"),), valid=True, nginx="200"),
    Case("chunked with uppercase coding and a chunk extension",
         (b"POST /c HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: Chunked\r\n\r\n"
          b"5;name=value\r\nhello\r\n0\r\n\r\n",),
         (Expected("POST", "/c", b"hello"),), valid=True, nginx="200"),
    Case("GET with a body", (b"GET /g HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\n\r\nabc",),
         (Expected("GET", "/g", b"abc"),), valid=True, nginx="200"),
    Case("Content-Length with leading zeros",
         (b"POST /z HTTP/1.1\r\n" + HOST + b"Content-Length: 005\r\n\r\nhello",),
         (Expected("POST", "/z", b"hello"),), nginx="200"),
    # -- issue #13, bug 1: Connection naming framing headers or Host ----------------------
    Case("Connection names Content-Length (smuggles the body as a request)",
         (post("/a", SMUGGLED, b"Connection: keep-alive, Content-Length\r\n"),),
         (Expected("POST", "/a", SMUGGLED),), nginx="200"),
    Case("Connection names Transfer-Encoding",
         (b"POST /a HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n"
          b"Connection: keep-alive, Transfer-Encoding\r\n\r\n" + chunked(SMUGGLED),),
         (Expected("POST", "/a", SMUGGLED),), nginx="200"),
    Case("Connection names Host", (get("/", b"Connection: Host\r\n"),), (GET,), nginx="200"),
    # -- bug 2: Content-Length with trailing whitespace (allowed: OWS) --------------------
    Case("Content-Length with trailing whitespace",
         (b"POST /ws HTTP/1.1\r\n" + HOST + b"Content-Length: 5 \r\n\r\nhello",),
         (Expected("POST", "/ws", b"hello"),), valid=True, nginx="200"),
    Case("Content-Length with a tab before the value",
         (b"POST /ws HTTP/1.1\r\n" + HOST + b"Content-Length:\t5\r\n\r\nhello",),
         (Expected("POST", "/ws", b"hello"),), nginx="400"),
    # -- bug 3: trailers must never become headers ----------------------------------------
    Case("trailer fields in the same packet as the body",
         (b"POST /t HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
          + chunked(b"hello", trailers=b"Cookie: injected=1\r\nAuthorization: Basic eDp5\r\n"
                    b"Host: evil.test\r\nX-Injected: 1\r\n"),),
         (Expected("POST", "/t", b"hello",
                   forbid=(b"cookie", b"authorization", b"x-injected")),), nginx="200"),
    # -- bug 4: two Hosts ---------------------------------------------------------------
    refused("two Host headers", get("/", b"Host: evil.test\r\n"), status_like_nginx=True),
    refused("two Host headers, the same name", get("/", b"Host: app.test\r\n"),
            status_like_nginx=True),
    # -- bug 8 and the forwarded headers -------------------------------------------------
    Case("the visitor claims another address", (get("/", b"X-Forwarded-For: 6.6.6.6\r\n"
                                                    b"X_Forwarded_For: 6.6.6.6\r\n"
                                                    b"X_Forwarded_Proto: https\r\n"),),
         (Expected("GET", "/", forbid=(b"x_forwarded_for", b"x_forwarded_proto")),),
         valid=True, edge_headers=True, nginx="200"),
    # -- hosts ------------------------------------------------------------------------
    refused("HTTP/1.1 with no Host", b"GET / HTTP/1.1\r\n\r\n", status_like_nginx=True),
    refused("HTTP/1.1 with an empty Host", b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
            status_like_nginx=True),
    refused("a Host with a space in it", b"GET / HTTP/1.1\r\nHost: app.test evil\r\n\r\n"),
    refused("a Host with a slash in it", b"GET / HTTP/1.1\r\nHost: app.test/x\r\n\r\n"),
    Case("an absolute-form target for another host",
         (b"GET http://evil.test/x HTTP/1.1\r\n" + HOST + b"\r\n",),
         (Expected("GET", "/x", host="evil.test"),), requests=1, nginx="200"),
    Case("an absolute-form target for the same host",
         (b"GET http://app.test/x HTTP/1.1\r\n" + HOST + b"\r\n",),
         (Expected("GET", ("/x", "http://app.test/x")),), nginx="200"),
    # -- request lines --------------------------------------------------------------------
    refused("HTTP/2.0 in the request line", get(version=b"2.0"), nginx="505",
            status_like_nginx=True),
    refused("HTTP/1.2 is answered as HTTP/1.1 or refused", get(version=b"1.2"), nginx="200",
            expect=(GET,)),
    refused("OPTIONS *", b"OPTIONS * HTTP/1.1\r\n" + HOST + b"\r\n"),
    refused("a space in the target", b"GET /a b HTTP/1.1\r\n" + HOST + b"\r\n", nginx="400",
            expect=(Expected("GET", ("/a%20b", "/a b")),)),
    refused("a NUL in the target", b"GET /a\x00b HTTP/1.1\r\n" + HOST + b"\r\n"),
    refused("a control byte in the target", b"GET /a\x01b HTTP/1.1\r\n" + HOST + b"\r\n",
            nginx="400", expect=(Expected("GET", ("/a%01b",)),)),
    refused("a request line ending in a bare CR", b"GET / HTTP/1.1\r" + HOST + b"\r\n"),
    # -- malformed heads ----------------------------------------------------------------
    refused("obs-fold", get("/", b"X-Folded: a\r\n b\r\n"), nginx="400",
            expect=(Expected("GET", "/"),)),
    refused("obs-fold of Transfer-Encoding",
            b"POST /f HTTP/1.1\r\n" + HOST + b"Transfer-Encoding:\r\n chunked\r\n"
            b"Content-Length: 5\r\n\r\n" + b"0\r\n\r\n" + SMUGGLED, nginx="400"),
    Case("bare LF line endings", (b"GET /lf HTTP/1.1\n" + HOST[:-2] + b"\n\n",),
         (Expected("GET", "/lf"),), nginx="200"),
    refused("a bare CR inside a header value", get("/", b"X-A: a\rX-B: b\r\n"), nginx="400",
            expect=(GET,)),
    refused("a NUL in a header value", get("/", b"X-A: a\x00b\r\n")),
    refused("a control byte in a header value", get("/", b"X-A: a\x01b\r\n"), nginx="200",
            expect=(GET,)),
    refused("a space before the colon", get("/", b"X-A : b\r\n"), nginx="400", expect=(GET,)),
    refused("a header line with no colon", get("/", b"X-A b\r\n"), nginx="400"),
    refused("10,000 headers in one write", get("/", b"".join(
        b"X-H%d: v\r\n" % i for i in range(10_000))), nginx="400"),
    refused("one 70 KiB header", get("/", b"X-Big: " + b"a" * 70_000 + b"\r\n"), nginx="400"),
    # -- Content-Length out of range --------------------------------------------------------
    refused("a huge Content-Length", b"POST /h HTTP/1.1\r\n" + HOST
            + b"Content-Length: 99999999999999999999999\r\n\r\nhello"),
    refused("a negative Content-Length", b"POST /n HTTP/1.1\r\n" + HOST
            + b"Content-Length: -1\r\n\r\nhello"),
    refused("a Content-Length with a plus", b"POST /n HTTP/1.1\r\n" + HOST
            + b"Content-Length: +5\r\n\r\nhello"),
    refused("a Content-Length in hex", b"POST /n HTTP/1.1\r\n" + HOST
            + b"Content-Length: 0x5\r\n\r\nhello"),
    refused("two different Content-Lengths", b"POST /n HTTP/1.1\r\n" + HOST
            + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    refused("two equal Content-Lengths", b"POST /n HTTP/1.1\r\n" + HOST
            + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", nginx="400",
            expect=(Expected("POST", "/n", b"hello"),)),
    refused("a Content-Length list", b"POST /n HTTP/1.1\r\n" + HOST
            + b"Content-Length: 5, 5\r\n\r\nhello", nginx="400",
            expect=(Expected("POST", "/n", b"hello"),)),
    # -- CL.TE, TE.CL, TE.TE --------------------------------------------------------------
    refused("CL.TE: Content-Length and chunked", b"POST /clte HTTP/1.1\r\n" + HOST
            + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"),
    refused("TE.CL: chunked and a short Content-Length", b"POST /tecl HTTP/1.1\r\n" + HOST
            + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
            + chunked(SMUGGLED)),
    te_cl("TE.TE: two Transfer-Encodings",
          b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n", "400"),
    te_cl("TE.TE: xchunked", b"Transfer-Encoding: xchunked\r\n", "501"),
    te_cl("TE.TE: a space before the colon", b"Transfer-Encoding : chunked\r\n", "400"),
    te_cl("TE.TE: a tab before the value", b"Transfer-Encoding:\tchunked\r\n", "501"),
    te_cl("TE.TE: chunked, identity", b"Transfer-Encoding: chunked, identity\r\n", "501"),
    te_cl("TE.TE: a vertical tab", b"Transfer-Encoding:\x0bchunked\r\n", "501"),
    te_cl("TE.TE: a bare LF before the header", b"X: y\nTransfer-Encoding: chunked\r\n", "400"),
    te_cl("TE.TE: quoted", b'Transfer-Encoding: "chunked"\r\n', "501"),
    refused("Transfer-Encoding: gzip, chunked", b"POST /g HTTP/1.1\r\n" + HOST
            + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked(b"hello"), nginx="501",
            status_like_nginx=True),
    refused("Transfer-Encoding: chunked, gzip", b"POST /g HTTP/1.1\r\n" + HOST
            + b"Transfer-Encoding: chunked, gzip\r\n\r\n" + chunked(b"hello"), nginx="501"),
    refused("Transfer-Encoding in an HTTP/1.0 request", b"POST /t HTTP/1.0\r\n" + HOST
            + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"hello"), status_like_nginx=True),
    # -- chunk sizes --------------------------------------------------------------------
    refused("a bad chunk size", b"POST /b HTTP/1.1\r\n" + HOST
            + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            status_like_nginx=True),
    refused("a chunk size that overflows 64 bits", b"POST /b HTTP/1.1\r\n" + HOST
            + b"Transfer-Encoding: chunked\r\n\r\n"
            + b"1" + b"0" * 16 + b"5\r\nhello\r\n0\r\n\r\n"),
    refused("a negative chunk size", b"POST /b HTTP/1.1\r\n" + HOST
            + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"),
    refused("a chunk longer than its size", b"POST /b HTTP/1.1\r\n" + HOST
            + b"Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", nginx="400"),
    Case("chunk lines ending in bare LF",
         (b"POST /b HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
          b"5\nhello\n0\n\n",),
         (Expected("POST", "/b", b"hello"),), requests=1, nginx="200", patience=1.0),
    # -- pipelining and keep-alive --------------------------------------------------------
    Case("two pipelined GETs", (get("/1") + get("/2"),),
         (Expected("GET", "/1"), Expected("GET", "/2")), valid=True, nginx="200 200"),
    Case("a pipelined POST then GET", (post("/1", b"hello") + get("/2"),),
         (Expected("POST", "/1", b"hello"), Expected("GET", "/2")), valid=True,
         nginx="200 200"),
    Case("a valid request then pipelined garbage", (get("/1") + b"GARBAGE\r\n\r\n",),
         (Expected("GET", "/1"),), requests=2, valid=True, nginx="200 400"),
    Case("a request after Connection: close is not read",
         (get("/1", b"Connection: close\r\n") + get("/2"),), (Expected("GET", "/1"),),
         valid=True, nginx="200"),
    Case("HTTP/1.0 keep-alive", (get("/1", b"Connection: keep-alive\r\n", b"1.0")
                                 + get("/2", b"", b"1.0"),),
         (Expected("GET", "/1"), Expected("GET", "/2")), valid=True, nginx="200 200"),
    Case("HTTP/1.0 without keep-alive reads one request",
         (get("/1", b"", b"1.0") + get("/2", b"", b"1.0"),), (Expected("GET", "/1"),),
         valid=True, nginx="200"),
    Case("Expect: 100-continue",
         (b"POST /e HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n",
          b"hello"),
         (Expected("POST", "/e", b"hello"),), valid=True, nginx="200"),
    Case("a request whose body never comes",
         (b"POST /never HTTP/1.1\r\n" + HOST + b"Content-Length: 100\r\n\r\nhello",),
         (), requests=1, unfinished=True, patience=1.0, nginx="-"),
    Case("HTTP/1.0 with no Host", (b"GET / HTTP/1.0\r\n\r\n",), (GET,), nginx="200"),
    Case("a chunked POST then a pipelined GET",
         (b"POST /c HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
          + chunked(b"hello") + get("/2"),),
         (Expected("POST", "/c", b"hello"), Expected("GET", "/2")), valid=True,
         nginx="200 200"),
    refused("CONNECT", b"CONNECT app.test:443 HTTP/1.1\r\n" + HOST + b"\r\n", nginx="400"),
    refused("a 70 KiB target", get("/" + "a" * 70_000), nginx="414"),
    # -- upgrades -----------------------------------------------------------------------
    Case("h2c upgrade the app ignores, then a pipelined GET",
         (b"GET /h2c HTTP/1.1\r\n" + HOST + b"Connection: Upgrade, HTTP2-Settings\r\n"
          b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n" + get("/after"),),
         (Expected("GET", "/h2c"), Expected("GET", "/after")), nginx="200 200"),
    Case("WebSocket upgrade",
         (b"GET /ws HTTP/1.1\r\n" + HOST + b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
          b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",),
         (Expected("GET", "/ws"),),
         answers=(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\n"
                  b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",),
         valid=True, nginx="101"),
    Case("WebSocket upgrade the app refuses, then a pipelined GET",
         (b"GET /ws HTTP/1.1\r\n" + HOST + b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
          b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
          + get("/after"),),
         (Expected("GET", "/ws"), Expected("GET", "/after")),
         answers=(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno",
                  b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
         nginx="403 200"),
    Case("WebSocket upgrade on a POST with a body the app accepts",
         (b"POST /ws HTTP/1.1\r\n" + HOST + b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
          b"Content-Length: 5\r\nSec-WebSocket-Version: 13\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nhello",),
         (Expected("POST", "/ws", b"hello"),),
         answers=(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\n\r\n",), nginx="101"),
    Case("WebSocket upgrade on a POST with a body",
         (b"POST /ws HTTP/1.1\r\n" + HOST + b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
          b"Content-Length: 5\r\nSec-WebSocket-Version: 13\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nhello",),
         (Expected("POST", "/ws", b"hello"),),
         answers=(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",), nginx="200"),
]


def answer_case(name: str, answer: bytes, *, method: str = "GET", nginx: str | None = "200",
                then: bytes | None = None, **kw: object) -> Case:
    """The app answers ``answer`` to a plain request (``then``: a pipelined second one)."""
    first = (b"%s /answer HTTP/1.1\r\n" % method.encode()) + HOST + b"\r\n"
    expect: tuple[Expected, ...] = (Expected(method, "/answer"),)
    if then is not None:
        first += then
        expect += (Expected("GET", "/next"),)
    return Case(name, (first,), expect, nginx=nginx, answers=(answer,), **kw)  # type: ignore[arg-type]


OK2 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
POISON = b"HTTP/1.1 200 OK\r\nX-Injected: 1\r\nContent-Length: 5\r\n\r\nevil!"

ANSWERS: list[Case] = [
    answer_case("an answer longer than its Content-Length",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + POISON),
    answer_case("a body on a 204", b"HTTP/1.1 204 No Content\r\n\r\n" + POISON, nginx="204"),
    answer_case("a body on a 304", b"HTTP/1.1 304 Not Modified\r\n\r\n" + POISON,
                nginx="304"),
    answer_case("a body on an answer to HEAD",
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + POISON, method="HEAD"),
    answer_case("a chunked answer with bytes after its end",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
                + POISON),
    answer_case("103 and 200 in one packet",
                b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" + OK2,
                nginx="-", nginx_violates="nginx 1.22 does not pass 1xx answers on"),
    answer_case("100 and 200 in one packet", b"HTTP/1.1 100 Continue\r\n\r\n" + OK2,
                nginx="-", nginx_violates="nginx 1.22 waits on after a 1xx from the app"),
    answer_case("Content-Length and chunked in an answer",
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"2\r\nok\r\n0\r\n\r\n", nginx="200"),
    answer_case("two different Content-Lengths in an answer",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\nok" + POISON,
                nginx="200", nginx_violates="nginx 1.22 takes the last Content-Length"),
    answer_case("an answer with no length ends with the connection",
                b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", nginx="200"),
    answer_case("a chunked answer", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"2\r\nok\r\n0\r\n\r\n", valid=True),
    answer_case("an answer to HEAD with its Content-Length",
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", method="HEAD", valid=True),
    answer_case("a 304 with a Content-Length and no body",
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", nginx="304",
                valid=True),
    answer_case("trailers on a chunked answer",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
                b"X-Injected: 1\r\nSet-Cookie: s=1\r\n\r\n"),
    answer_case("an obs-fold in an answer header",
                b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok", nginx="502"),
    answer_case("a status line that is not one", b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok",
                nginx="-", answer_expect=((502, b""),),
                nginx_violates="nginx 1.22 takes it for HTTP/0.9 and waits for the close"),
    answer_case("a 101 to a request that asked for no upgrade",
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\n\r\n" + POISON, nginx="-",
                nginx_violates="nginx 1.22 gives the visitor nothing and waits"),
    answer_case("an answer with a bad chunk size",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
                nginx="-", app_broken=True),
    answer_case("an answer longer than its Content-Length, then a pipelined request",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + POISON,
                then=get("/next"), nginx="200 200"),
]

CASES = REQUESTS + ANSWERS
