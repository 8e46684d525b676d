"""One case through one proxy, and the invariants that its outcome must keep.

A case is raw visitor bytes (sent in one write, or in parts with pauses), the requests a
correct proxy forwards if it accepts them (``expect``), and the app's raw answers. Running it
through a proxy gives an ``Outcome``: what the visitor read back, and what the recording
upstream received. ``violations`` checks one outcome on its own (nothing smuggled, framing
exact, answers intact, the pooled connections still sound); ``looser_than`` compares bindrop
with nginx (bindrop must refuse what nginx refuses).
"""

from __future__ import annotations

import itertools
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .recorder import OK, Background, Recorder, probe_answer
from .wire import Answer, Answers, ParsedRequest, parse_answers

T = TypeVar("T")

#: Headers a proxy may add to a request on its way to the app.
ADDED_UPSTREAM = frozenset({
    b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port",
    b"forwarded", b"x-real-ip", b"x-request-id", b"via", b"connection", b"content-length",
    b"transfer-encoding", b"host", b"upgrade"})
#: Headers a proxy may add to an answer on its way to the visitor.
ADDED_DOWNSTREAM = frozenset({
    b"server", b"date", b"connection", b"keep-alive", b"x-request-id", b"content-length",
    b"transfer-encoding", b"via", b"upgrade"})


@dataclass(frozen=True)
class Expected:
    """A request as the app must receive it, if the proxy forwards it."""
    method: str
    target: str | tuple[str, ...]  # alternatives: any of them is right
    body: bytes = b""
    host: str = "app.test"
    #: Header names (lowercase) that must not reach the app in the request's head.
    forbid: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Case:
    name: str
    #: What the visitor sends: one write per part, ``pause`` seconds apart.
    parts: tuple[bytes, ...]
    #: The requests a correct proxy forwards, in order, if it accepts them all.
    expect: tuple[Expected, ...] = ()
    #: How many requests the visitor sent (answers it may get); default len(expect).
    requests: int | None = None
    #: The app's raw answers, in order (the last repeats); default a plain 200 "ok".
    answers: tuple[bytes, ...] = ()
    #: A request every proxy must forward (refusing it is a bug, not strictness).
    valid: bool = False
    #: nginx's result as recorded (``summary``), checked against the live nginx; None when
    #: it is not stable enough to pin.
    nginx: str | None = None
    pause: float = 0.3
    #: How long the visitor waits for more bytes before it gives up.
    patience: float = 2.0
    #: The visitor's last request is incomplete on purpose (the app may see its start).
    unfinished: bool = False
    #: The app must see the visitor as exactly 127.0.0.1, whatever the visitor claims.
    edge_headers: bool = False
    #: What the visitor must get for each forwarded request, when the app's raw answer is
    #: not one the strict parser reads (default: parsed from ``answers``).
    answer_expect: tuple[tuple[int, bytes], ...] | None = None
    #: A refusal must carry nginx's status (the issue names it), not just any error.
    status_like_nginx: bool = False
    #: The app's answer is broken mid-body: the visitor may get its start, then a close.
    app_broken: bool = False
    #: Why nginx itself breaks an invariant here (then its violations are not asserted).
    nginx_violates: str = ""

    @property
    def visitor_requests(self) -> int:
        return len(self.expect) if self.requests is None else self.requests

    @property
    def raw(self) -> bytes:
        return b"".join(self.parts)


@dataclass
class Outcome:
    lane: str
    answers: Answers
    raw: bytes
    closed: bool
    received: list[ParsedRequest]
    partial: list[bytes]
    tunnel: bytes
    probe: str  # "" when the probe came through intact, else what went wrong

    @property
    def forwarded(self) -> int:
        return len(self.received)

    def summary(self) -> str:
        """What the visitor saw, e.g. ``200 200``, ``400``, ``-`` (nothing): the part of an
        outcome pinned in the corpus."""
        statuses = [str(a.status) for a in self.answers.final]
        return " ".join(statuses) or "-"

    def describe(self) -> str:
        lines = [f"{self.lane}: visitor got {self.summary()} (closed={self.closed}), "
                 f"raw {self.raw[:300]!r}"]
        for r in self.received:
            lines.append(f"  upstream got {r.raw[:400]!r} anomalies={list(r.anomalies)}")
        for p in self.partial:
            lines.append(f"  upstream holds unfinished {p[:300]!r}")
        if self.tunnel:
            lines.append(f"  upstream tunnel got {self.tunnel[:300]!r}")
        if self.probe:
            lines.append(f"  probe: {self.probe}")
        return "\n".join(lines)


_probes = itertools.count(1)


def exchange(port: int, parts: tuple[bytes, ...], *, answers: int, methods: list[str],
             pause: float, patience: float, quiet: float = 0.15, deadline: float = 15.0
             ) -> tuple[bytes, bool, Answers]:
    """Send ``parts`` to ``port`` and read until the connection closes, ``answers`` final
    answers came and nothing more for ``quiet`` s (bytes after them would be a poisoned
    answer), or nothing came for ``patience`` s."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    data = b""
    closed = False
    try:
        for i, part in enumerate(parts):
            if i:
                data, closed = _read(sock, data, pause)
                if closed:
                    break
            sock.sendall(part)
        end = time.monotonic() + deadline
        quiet_since = time.monotonic()
        while not closed and time.monotonic() < end:
            parsed = parse_answers(data, methods, closed=False)
            done = (len(parsed.final) >= answers and all(a.complete for a in parsed.final)) \
                or any(a.status == 101 for a in parsed.final)
            wait = quiet if done else patience
            more, closed = _read(sock, b"", wait, first=True)
            if more:
                data += more
                quiet_since = time.monotonic()
            elif closed or time.monotonic() - quiet_since >= wait:
                break
    except ConnectionResetError:
        closed = True
    finally:
        sock.close()
    return data, closed, parse_answers(data, methods, closed=closed)


def _read(sock: socket.socket, data: bytes, wait: float, *, first: bool = False
          ) -> tuple[bytes, bool]:
    """``data`` plus what arrives within ``wait`` s (``first``: only the first piece that
    does); True when the peer closed."""
    end = time.monotonic() + wait
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return data, False
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            return data, False
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
        if first:
            return data, False


def run_case(background: Background, recorder: Recorder, lane: str, port: int,
             case: Case, *, quiet: float = 0.15) -> Outcome:
    """``case`` through the proxy on ``port`` (whose app is ``lane`` of ``recorder``)."""
    mark = background.call(_call(lambda: recorder.begin(lane, case.answers)))
    methods = [e.method for e in case.expect] + ["GET"] * case.visitor_requests
    raw, closed, answers = exchange(port, case.parts, answers=case.visitor_requests,
                                    methods=methods, pause=case.pause, patience=case.patience,
                                    quiet=quiet)
    probe = check_probe(port)
    time.sleep(quiet / 3)  # bytes in flight on other upstream connections land
    received, partial, tunnel = background.call(_call(lambda: recorder.since(lane, mark)))
    probes = [r for r in received if r.target.startswith("/probe/") and not r.anomalies]
    received = [r for r in received if r not in probes]
    if not probe and len(probes) != 1:
        probe = f"the app received {len(probes)} probes"
    return Outcome(lane, answers, raw, closed, received, partial, tunnel, probe)


def check_probe(port: int) -> str:
    """A plain request on a new connection, after a case: "" if it went through intact
    (a desynced pooled upstream connection would lose or garble it)."""
    target = f"/probe/{next(_probes)}"
    raw, _, answers = exchange(
        port, (f"GET {target} HTTP/1.1\r\nHost: app.test\r\n\r\n".encode(),),
        answers=1, methods=["GET"], pause=0, patience=5.0, quiet=0)
    expected = parse_answers(probe_answer(target), ["GET"], closed=False).final[0]
    if len(answers.final) != 1 or answers.final[0].status != 200 \
            or answers.final[0].body != expected.body or answers.rest:
        return f"the probe {target} got {raw[:300]!r}"
    return ""


async def _call(fn: Callable[[], T]) -> T:
    """``fn()`` on the background loop (the recorder's state lives there)."""
    return fn()


def _app_answers(case: Case) -> list[Answer]:
    if case.answer_expect is not None:
        return [Answer(status, (), body) for status, body in case.answer_expect]
    scripts = case.answers or (OK,)
    out = []
    for i, e in enumerate(case.expect):
        script = scripts[min(i, len(scripts) - 1)]
        parsed = parse_answers(script, [e.method], closed=True)
        out.append(parsed.final[0])
    return out


def _same_request(expected: Expected, got: ParsedRequest) -> list[str]:
    problems = []
    targets = (expected.target,) if isinstance(expected.target, str) else expected.target
    if got.anomalies:
        problems.append(f"framing/anomalies {list(got.anomalies)}")
    if got.method != expected.method:
        problems.append(f"method {got.method!r} != {expected.method!r}")
    if got.target not in targets:
        problems.append(f"target {got.target!r} not in {targets!r}")
    if got.body != expected.body:
        problems.append(f"body {got.body[:100]!r} != {expected.body[:100]!r}")
    hosts = [h.decode("latin-1").lower().rsplit(":", 1)[0] if not h.startswith(b"[") else
             h.decode("latin-1") for h in got.header(b"host")]
    if hosts != [expected.host]:
        problems.append(f"Host {got.header(b'host')!r}, not [{expected.host!r}]")
    leaked = set(expected.forbid) & got.names
    if leaked:
        problems.append(f"headers that must not reach the app: {sorted(leaked)}")
    return problems


def violations(case: Case, outcome: Outcome) -> list[str]:
    """What in ``outcome`` breaks the invariants, on its own (no reference needed)."""
    problems: list[str] = []
    forwarded = 0
    for i, got in enumerate(outcome.received):
        if i >= len(case.expect):
            problems.append(f"the app received request #{i + 1}, but the visitor sent only "
                            f"{len(case.expect)} to forward: {got.raw[:200]!r}")
            continue
        wrong = _same_request(case.expect[i], got)
        if wrong:
            problems.append(f"request #{i + 1} reached the app changed: {'; '.join(wrong)}")
        elif forwarded == i:
            forwarded += 1
    if outcome.partial and not case.unfinished:
        problems.append(f"the app holds an unfinished request: {outcome.partial[0][:200]!r}")
    final = outcome.answers.final
    if len(final) > case.visitor_requests:
        problems.append(f"{len(final)} answers to {case.visitor_requests} requests")
    for problem in outcome.answers.problems:
        problems.append(f"the visitor's answer is malformed: {problem}")
    if outcome.answers.rest:
        problems.append(f"bytes after the answers: {outcome.answers.rest[:100]!r}")
    app = _app_answers(case)
    for i, answer in enumerate(final):
        if i < len(outcome.received) and i < len(app):
            want = app[i]
            if answer.status == 502 and not case.valid:
                continue  # the proxy refused the app's answer: stricter, never wrong
            if case.app_broken and answer.status == want.status and not answer.complete \
                    and outcome.closed:
                continue  # cut off where the app's answer broke
            if answer.status != want.status or answer.body != want.body or not answer.complete:
                problems.append(f"answer #{i + 1} is {answer.status} {answer.body[:80]!r} "
                                f"(complete={answer.complete}), the app said {want.status} "
                                f"{want.body[:80]!r}")
            extra = {k.lower() for k, _ in answer.headers} - {k.lower() for k, _ in
                                                              want.headers} - ADDED_DOWNSTREAM
            if case.answer_expect is None and extra:
                problems.append(f"answer #{i + 1} has headers the app did not send: "
                                f"{sorted(extra)}")
        elif answer.status < 400:
            problems.append(f"answer #{i + 1} ({answer.status}) to a request the app never "
                            "received")
    answered = sum(1 for a in final if a.complete)
    if answered < len(outcome.received) and not case.unfinished \
            and not (case.app_broken and outcome.closed):
        problems.append(f"the app answered {len(outcome.received)} requests, the visitor got "
                        f"{answered} answers (closed={outcome.closed})")
    if outcome.probe:
        problems.append(outcome.probe)
    if case.edge_headers:
        for got in outcome.received:
            xff = got.header(b"x-forwarded-for")
            if xff != [b"127.0.0.1"]:
                problems.append(f"the app sees the visitor as X-Forwarded-For {xff!r}")
            real = got.header(b"x-real-ip")
            if real not in ([], [b"127.0.0.1"]):
                problems.append(f"the app sees the visitor as X-Real-IP {real!r}")
            rfc7239 = b",".join(got.header(b"forwarded")).lower().replace(b'"', b"")
            if rfc7239 and (rfc7239.count(b"for=") != 1 or b"for=127.0.0.1" not in rfc7239):
                problems.append(f"the app sees the visitor as Forwarded {rfc7239!r}")
            spoofed = {k.lower() for k, _ in got.headers if b"_" in k
                       and k.lower().replace(b"_", b"-").startswith(b"x-forwarded")}
            if spoofed:
                problems.append(f"underscore forms reach the app: {sorted(spoofed)}")
    return problems


def looser_than(case: Case, bindrop: Outcome, nginx: Outcome) -> list[str]:
    """Where bindrop accepted what nginx refused (or refused a request that must pass)."""
    problems = []
    if bindrop.forwarded > nginx.forwarded:
        problems.append(f"bindrop forwarded {bindrop.forwarded} requests, nginx "
                        f"{nginx.forwarded} (nginx answered {nginx.summary()})")
    if case.valid and bindrop.forwarded < len(case.expect):
        problems.append(f"bindrop refused a valid request ({bindrop.summary()})")
    refusals = [_refusals(o) for o in (bindrop, nginx)]
    if refusals[1] and not refusals[0]:
        problems.append(f"nginx refused with {refusals[1][0]}, bindrop gave no error answer "
                        f"({bindrop.summary()}, closed={bindrop.closed})")
    elif case.status_like_nginx and refusals[0][:1] != refusals[1][:1]:
        problems.append(f"bindrop refused with {refusals[0][:1]}, nginx with {refusals[1][:1]}")
    return problems


def _refusals(outcome: Outcome) -> list[int]:
    """The error statuses the proxy answered itself (to requests it did not forward)."""
    return [a.status for a in outcome.answers.final[outcome.forwarded:] if a.status >= 400]
