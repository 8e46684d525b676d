"""plan_reconcile: desired config and observed units in, ordered steps out (tables)."""

from __future__ import annotations

import pytest

from bindrop.hub.plan import (
    Adopt,
    DesiredApp,
    ObservedUnit,
    Recreate,
    Redeploy,
    Step,
    StopUnit,
    instance_release,
    next_instance,
    plan_reconcile,
)


def unit(app: str, instance: str, up: bool = True) -> ObservedUnit:
    return ObservedUnit(f"bindrop-app-{app}-{instance}.service", app, instance, up)


def kinds(steps: list[Step]) -> list[tuple[str, str]]:
    out = []
    for s in steps:
        if isinstance(s, StopUnit):
            out.append(("stop", s.unit))
        elif isinstance(s, Adopt):
            out.append(("adopt", s.unit))
        elif isinstance(s, Recreate):
            out.append(("recreate", f"{s.app}@{s.release}"))
        elif isinstance(s, Redeploy):
            out.append(("redeploy", f"{s.app}@{s.release}"))
    return out


U = "bindrop-app-{}.service".format

CASES = [
    pytest.param([DesiredApp("blog", True, 3)], [unit("blog", "3")],
                 [("adopt", U("blog-3"))], id="running-unit-is-adopted-not-restarted"),
    pytest.param([DesiredApp("blog", True, 3)], [],
                 [("recreate", "blog@3")], id="missing-unit-is-recreated-after-reboot"),
    pytest.param([DesiredApp("blog", True, 3)], [unit("blog", "3", up=False)],
                 [("recreate", "blog@3")], id="a-unit-that-is-not-up-does-not-count"),
    pytest.param([], [unit("ghost", "1")],
                 [("stop", U("ghost-1"))], id="unit-no-config-asks-for-is-stopped"),
    pytest.param([DesiredApp("blog", False, 3)], [unit("blog", "3")],
                 [("stop", U("blog-3"))], id="stopped-app-has-its-unit-stopped"),
    pytest.param([DesiredApp("blog", False, 3)], [],
                 [], id="stopped-app-with-nothing-running-needs-nothing"),
    pytest.param([DesiredApp("blog", True, None)], [unit("blog", "1")],
                 [("stop", U("blog-1"))], id="app-without-release-runs-nothing"),
    pytest.param([DesiredApp("blog", True, 4)], [unit("blog", "3"), unit("blog", "4")],
                 [("adopt", U("blog-4")), ("stop", U("blog-3"))],
                 id="hub-died-after-the-flip-old-release-is-stopped"),
    pytest.param([DesiredApp("blog", True, 3)], [unit("blog", "3"), unit("blog", "3.1")],
                 [("adopt", U("blog-3.1")), ("stop", U("blog-3"))],
                 id="hub-died-mid-restart-newest-instance-is-kept"),
    pytest.param([DesiredApp("blog", True, 5)], [unit("blog", "4")],
                 [("adopt", U("blog-4")), ("redeploy", "blog@5")],
                 id="other-release-keeps-serving-while-the-wanted-one-is-deployed"),
    pytest.param([DesiredApp("a", True, 1), DesiredApp("b", True, 2)],
                 [unit("b", "2"), unit("c", "9")],
                 [("recreate", "a@1"), ("adopt", U("b-2")), ("stop", U("c-9"))],
                 id="apps-are-planned-independently-in-name-order"),
]


@pytest.mark.parametrize(("desired", "observed", "expected"), CASES)
def test_plan_reconcile(desired: list[DesiredApp], observed: list[ObservedUnit],
                        expected: list[tuple[str, str]]) -> None:
    assert kinds(plan_reconcile(desired, observed)) == expected


@pytest.mark.parametrize(("release", "existing", "expected"), [
    ("3", [], "3"),
    ("3", ["3"], "3.1"),
    ("3", ["3", "3.1", "2.7"], "3.2"),
    ("3", ["2", "2.1"], "3"),
])
def test_next_instance_never_reuses_a_running_name(release: str, existing: list[str],
                                                   expected: str) -> None:
    assert next_instance(release, existing) == expected


def test_instance_release_strips_the_restart_counter() -> None:
    assert instance_release("12.3") == "12"
    assert instance_release("12") == "12"
