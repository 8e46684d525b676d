"""Issue #13: every corpus case through nginx (the reference, run live) and bindrop's proxy,
in front of the same recording upstream.

For nginx the test checks the case itself (nginx keeps the invariants and still answers as
the corpus recorded); for bindrop, that it keeps the same invariants and refuses what nginx
refuses. Cases bindrop still fails are listed in XFAIL (and in /work/coord/edge-findings.md
while the fixes land), strictly: one that starts passing must lose its mark.
"""

from __future__ import annotations

import pytest

from .conftest import Rig
from .corpus import CASES
from .harness import Case, Outcome, looser_than, violations

XFAIL = frozenset({
    'Connection names Content-Length (smuggles the body as a request)',
    'Connection names Host',
    'Content-Length with trailing whitespace',
    'Content-Length with a tab before the value',
    'trailer fields in the same packet as the body',
    'two Host headers',
    'two Host headers, the same name',
    'the visitor claims another address',
    'HTTP/1.1 with no Host',
    'HTTP/1.1 with an empty Host',
    'an absolute-form target for another host',
    'HTTP/2.0 in the request line',
    'OPTIONS *',
    '10,000 headers in one write',
    'Transfer-Encoding: gzip, chunked',
    'Transfer-Encoding in an HTTP/1.0 request',
    'a bad chunk size',
    'a chunk size that overflows 64 bits',
    'a negative chunk size',
    'a chunk longer than its size',
    'a valid request then pipelined garbage',
    'a request after Connection: close is not read',
    'HTTP/1.0 without keep-alive reads one request',
    'an answer longer than its Content-Length',
    'a body on a 204',
    'a body on a 304',
    'a chunked answer with bytes after its end',
    '103 and 200 in one packet',
    '100 and 200 in one packet',
    'an answer longer than its Content-Length, then a pipelined request',
})

_nginx_outcomes: dict[str, Outcome] = {}


def _nginx(rig: Rig, case: Case) -> Outcome:
    """nginx's outcome for ``case``, once per session (both tests below use it)."""
    if case.name not in _nginx_outcomes:
        _nginx_outcomes[case.name] = rig.run("nginx", case)
    return _nginx_outcomes[case.name]


def _params(cases: list[Case], xfail: frozenset[str]) -> list[object]:
    return [pytest.param(c, id=c.name, marks=[pytest.mark.xfail(
        strict=True, reason=f"edge-findings: {c.name}")] if c.name in xfail else [])
        for c in cases]


def test_corpus_names_are_unique() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert not set(XFAIL) - set(names)


@pytest.mark.parametrize("case", _params(CASES, frozenset()))
def test_nginx_the_reference_keeps_the_invariants(rig: Rig, case: Case) -> None:
    outcome = _nginx(rig, case)
    if case.nginx is not None:
        assert outcome.summary() == case.nginx, outcome.describe()
    if not case.nginx_violates:
        assert violations(case, outcome) == [], outcome.describe()


@pytest.mark.parametrize("case", _params(CASES, XFAIL))
def test_bindrop_keeps_the_invariants_and_refuses_what_nginx_refuses(rig: Rig,
                                                                     case: Case) -> None:
    reference = _nginx(rig, case)
    outcome = rig.run("bindrop", case)
    problems = violations(case, outcome) + looser_than(case, outcome, reference)
    assert problems == [], f"{outcome.describe()}\n{reference.describe()}"
