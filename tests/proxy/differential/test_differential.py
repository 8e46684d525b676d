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

XFAIL: frozenset[str] = frozenset()

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
    if problems:
        rig.restart_bindrop()
    assert problems == [], f"{outcome.describe()}\n{reference.describe()}"
