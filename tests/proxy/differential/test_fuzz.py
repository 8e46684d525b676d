"""Issue #13: a property-based fuzz of the request path and the answer path, through nginx
and bindrop side by side, with the differential suite's invariants: nothing smuggled, the
app gets each request exactly (method, target, body, framing), the visitor gets each answer
exactly, bindrop refuses what nginx refuses.

Requests are well framed by construction (Content-Length or chunked) and then bent by a few
mutations from the smuggling literature; answers likewise. Bounded (200 examples in all,
about half a minute); under CI=true the examples are the same every run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .conftest import Rig
from .corpus import POISON
from .harness import Case, Expected, looser_than, violations

CI = bool(os.environ.get("CI"))
#: Under CI the same examples every run, and no shrinking (its time is unbounded).
FUZZ = settings(max_examples=100, deadline=None, database=None, print_blob=True,
                derandomize=CI, phases=[p for p in Phase if p is not Phase.shrink or not CI],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
QUIET = 0.05


@dataclass
class Draft:
    """A request being built: head lines (without line ends), their separators, payload."""
    method: bytes
    target: bytes
    version: bytes
    headers: list[tuple[bytes, bytes]]
    payload: bytes
    framing: str
    body: bytes
    pieces: list[bytes]
    trailers: bytes = b""
    separator: bytes = b"\r\n"
    fold: bool = False
    #: The framing header is gone: the request has no body and its chunks are garbage.
    unframed: bool = False

    def replace(self, name: bytes, value: bytes) -> None:
        self.headers = [(k, value if k.lower() == name else v) for k, v in self.headers]

    def render(self) -> bytes:
        lines = [b"%s %s HTTP/%s" % (self.method, self.target, self.version)]
        lines += [k + b":" + (b" " if v[:1] not in (b" ", b"\t") else b"") + v
                  for k, v in self.headers]
        head = lines[0] + b"\r\n" + self.separator.join(lines[1:])
        if self.fold:
            head += b"\r\nX-Fold: a\r\n b"
        payload = self.payload
        if self.framing == "chunked":
            payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in self.pieces if p) \
                + b"0\r\n" + self.trailers + b"\r\n"
        return head + b"\r\n\r\n" + payload


def _mutate(draft: Draft, mutation: str, draw: st.DrawFn) -> tuple[bytes, ...]:
    """Apply ``mutation``; returns the header names that must not reach the app."""
    cl, te = b"content-length", b"transfer-encoding"
    length = b"%d" % len(draft.body)
    if mutation == "Content-Length spelled otherwise" and draft.framing == "length":
        draft.replace(cl, draw(st.sampled_from(
            [b"00" + length, length + b" ", b"+" + length, b"-1", b"9" * 25, b"0x" + length,
             length + b", " + length])))  # (a tab: the corpus's own case)
    elif mutation == "a second Content-Length" and draft.framing == "length":
        draft.headers.append((b"Content-Length", draw(st.sampled_from(
            [length, b"%d" % (len(draft.body) + 1), b"0"]))))
    elif mutation == "Transfer-Encoding next to a length" and draft.framing == "length":
        draft.headers.append((b"Transfer-Encoding", b"chunked"))
    elif mutation == "Content-Length next to chunked" and draft.framing == "chunked":
        draft.headers.append((b"Content-Length", draw(st.sampled_from([b"0", b"3", length]))))
    elif mutation == "Transfer-Encoding spelled otherwise" and draft.framing == "chunked":
        value = draw(st.sampled_from(
            [b"Chunked", b"CHUNKED", b"chunked ", b"xchunked", b"chunked, identity",
             b"identity, chunked", b"gzip, chunked", b'"chunked"', b"\x0bchunked",
             b"chunked, chunked"]))
        draft.replace(te, value)
    elif mutation == "Transfer-Encoding named otherwise" and draft.framing == "chunked":
        name = draw(st.sampled_from([b"Transfer-Encoding ", b"Transfer_Encoding",
                                          b"transfer-encoding", b" Transfer-Encoding"]))
        draft.headers = [(name if k.lower() == te else k, v) for k, v in draft.headers]
        if name == b"Transfer_Encoding":  # another field: no body, then chunk lines (garbage)
            draft.unframed = True
    elif mutation == "a second Transfer-Encoding" and draft.framing == "chunked":
        draft.headers.append((b"Transfer-Encoding", draw(st.sampled_from(
            [b"chunked", b"identity", b"x"]))))
    elif mutation == "Connection names a header":
        named = draw(st.sampled_from([b"Content-Length", b"Transfer-Encoding", b"Host",
                                           b"X-Fuzz", b"Upgrade", b"close"]))
        draft.headers.append((b"X-Fuzz", b"1"))
        draft.headers.append((b"Connection", b"keep-alive, " + named))
    elif mutation == "obs-fold":
        draft.fold = True
    elif mutation == "bare LF between headers":
        draft.separator = b"\n"
    elif mutation == "Host spelled otherwise":
        host = draw(st.sampled_from([None, b"", b"evil.test", b"app.test", b"app.test:80",
                                          b"APP.test"]))
        if host is None:
            draft.headers = [(k, v) for k, v in draft.headers if k.lower() != b"host"]
        elif host in (b"evil.test", b"app.test"):
            draft.headers.append((b"Host", host))
        else:
            draft.replace(b"host", host)
    elif mutation == "a control byte in a value":
        draft.headers.append((b"X-Fuzz", draw(st.sampled_from(
            [b"a\x00b", b"a\x01b", b"a\x7fb", b"a\rb", b"\xff\xfe"]))))
    elif mutation == "a space before a colon":
        draft.headers.append((b"X-Fuzz ", b"1"))
    elif mutation == "HTTP/1.0":
        draft.version = b"1.0"
        if draw(st.booleans()):
            draft.headers.append((b"Connection", b"keep-alive"))
    elif mutation == "trailers" and draft.framing == "chunked":
        draft.trailers = b"Cookie: t=1\r\nX-Trailer: 1\r\nContent-Length: 99\r\n"
        return (b"cookie", b"x-trailer")
    elif mutation == "spoofed forwarding headers":
        draft.headers += [(b"X_Forwarded_For", b"6.6.6.6"), (b"X-Forwarded-For", b"6.6.6.6")]
        return (b"x_forwarded_for",)
    elif mutation == "chunk sizes spelled otherwise" and draft.framing == "chunked":
        style = draw(st.sampled_from(["zeros", "upper", "ext", "overflow"]))
        head = draft.render().partition(b"\r\n\r\n")[0]
        sizes = {"zeros": b"%08x", "upper": b"%X", "ext": b"%x;e=1", "overflow": b"1%016x"}
        draft.framing = "raw"
        draft.payload = b"".join((sizes[style] % len(p)) + b"\r\n" + p + b"\r\n"
                                 for p in draft.pieces if p) + b"0\r\n\r\n"
        draft.headers, draft.fold, draft.separator = [], False, b"\r\n"
        draft.method, draft.target, draft.version = head, b"", b""
    return ()


MUTATIONS = ["Content-Length spelled otherwise", "a second Content-Length",
             "Transfer-Encoding next to a length", "Content-Length next to chunked",
             "Transfer-Encoding spelled otherwise", "Transfer-Encoding named otherwise",
             "a second Transfer-Encoding", "Connection names a header", "obs-fold",
             "bare LF between headers", "Host spelled otherwise", "a control byte in a value",
             "a space before a colon", "HTTP/1.0", "trailers", "spoofed forwarding headers",
             "chunk sizes spelled otherwise"]


def _raw_draft_render(draft: Draft) -> bytes:
    if draft.framing == "raw":  # the head was rendered already, kept in ``method``
        return draft.method + b"\r\n\r\n" + draft.payload
    return draft.render()


@st.composite
def visitor_requests(draw: st.DrawFn) -> Case:
    count = draw(st.integers(1, 2))
    raw, expect = b"", []
    for _ in range(count):
        method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE"]))
        target = draw(st.sampled_from([b"/", b"/a", b"/a/b?x=1&y=%20", b"/%41;p"]))
        body = draw(st.binary(max_size=40)) if method != b"GET" else b""
        framing = draw(st.sampled_from(["length", "chunked"] if body else
                                       ["none", "length", "chunked"]))
        headers = [(b"Host", b"app.test")]
        pieces = [body]
        if framing == "length":
            headers.append((b"Content-Length", b"%d" % len(body)))
        elif framing == "chunked":
            headers.append((b"Transfer-Encoding", b"chunked"))
            cut = draw(st.integers(0, len(body)))
            pieces = [body[:cut], body[cut:]]
        draft = Draft(method, target, b"1.1", headers, body if framing == "length" else b"",
                      framing, body, pieces)
        forbid: tuple[bytes, ...] = ()
        for mutation in draw(st.lists(st.sampled_from(MUTATIONS), max_size=2, unique=True)):
            forbid += _mutate(draft, mutation, draw)
        raw += _raw_draft_render(draft)
        expect.append(Expected(method.decode(), target.decode(),
                               b"" if draft.unframed else body, forbid=forbid))
        count += draft.unframed
    return Case("fuzzed request", (raw,), tuple(expect), requests=count, patience=1.0,
                edge_headers=True)


@st.composite
def app_answers(draw: st.DrawFn) -> Case:
    method = draw(st.sampled_from(["GET", "HEAD"]))
    status = draw(st.sampled_from([200, 201, 204, 304, 404, 500]))
    body = b"" if status in (204, 304) else draw(st.binary(max_size=40))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    interim = draw(st.sampled_from([b"", b"", b"", b"", b"", b"HTTP/1.1 100 Continue\r\n\r\n",
                                    b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"]))
    mutation = draw(st.sampled_from(["none", "bytes after the end", "a body where none goes",
                                     "two Content-Lengths", "length and chunked",
                                     "header injection attempt", "trailers", "an unasked 101"]))
    head = [b"HTTP/1.1 %d Fuzzed" % status, b"X-App: fuzz"]
    sent = b"" if method == "HEAD" else body
    if framing == "length":
        head.append(b"Content-Length: %d" % len(body))
        payload = sent
    elif framing == "chunked" and status not in (204, 304):
        head.append(b"Transfer-Encoding: chunked")
        payload = b"" if method == "HEAD" else \
            (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    else:
        head.append(b"Connection: close")
        payload = sent
    expect_answer = None
    if mutation == "bytes after the end" and framing != "close":
        payload += POISON
    elif mutation == "a body where none goes" and (status in (204, 304) or method == "HEAD"):
        payload += b"stray body" + POISON
    elif mutation == "two Content-Lengths" and framing == "length":
        head.append(b"Content-Length: %d" % (len(body) + 3))
        expect_answer = ((502, b""),)
    elif mutation == "length and chunked" and framing == "chunked":
        head.append(b"Content-Length: 1")
    elif mutation == "header injection attempt":
        head.append(b"X-Note: a")
    elif mutation == "trailers" and framing == "chunked" and payload.endswith(b"0\r\n\r\n"):
        payload = payload[:-2] + b"X-Injected: 1\r\nSet-Cookie: t=1\r\n\r\n"
    elif mutation == "an unasked 101":
        interim = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"
        expect_answer = ((502, b""),)
    answer = interim + b"\r\n".join(head) + b"\r\n\r\n" + payload
    request = b"%s /answer HTTP/1.1\r\nHost: app.test\r\n\r\n" % method.encode()
    return Case("fuzzed answer", (request,), (Expected(method, "/answer"),),
                answers=(answer,), answer_expect=expect_answer, patience=1.0)


@FUZZ
@given(case=visitor_requests())
def test_fuzzed_requests_reach_the_app_exactly_or_not_at_all(rig: Rig, case: Case) -> None:
    nginx, bindrop = rig.run_both(case, quiet=QUIET, nginx_patience=0.5)
    problems = violations(case, bindrop) + looser_than(case, bindrop, nginx)
    if problems:
        rig.restart_bindrop()
    assert problems == [], f"{case.raw!r}\n{bindrop.describe()}\n{nginx.describe()}"


@FUZZ
@given(case=app_answers())
def test_fuzzed_answers_reach_the_visitor_exactly_or_as_502(rig: Rig, case: Case) -> None:
    # nginx 1.22 sits on an app's 1xx answer: not worth a second of waiting each time.
    nginx, bindrop = rig.run_both(case, quiet=QUIET, nginx_patience=0.3)
    problems = violations(case, bindrop) + looser_than(case, bindrop, nginx)
    if problems:
        rig.restart_bindrop()
    assert problems == [], f"{case.answers!r}\n{bindrop.describe()}\n{nginx.describe()}"
