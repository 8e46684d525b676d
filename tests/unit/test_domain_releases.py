"""Release numbers (bindrop.domain.releases): read once at the edge, an int from there on."""

from __future__ import annotations

import pytest

from bindrop.domain.releases import parse_release_number
from bindrop.errors import InvalidInput
from bindrop.hub.commands import Deploy, Rollback, describe
from bindrop.hub.plan import DesiredApp, ObservedUnit, Recreate, Redeploy, plan_reconcile


@pytest.mark.parametrize(("value", "number"),
                         [(1, 1), ("3", 3), ("042", 42), (2**63 - 1, 2**63 - 1)])
def test_a_release_number_is_read_from_an_int_or_digits(value: object, number: int) -> None:
    parsed = parse_release_number(value)
    assert parsed == number and type(parsed) is int


@pytest.mark.parametrize("value", [0, -1, True, "x", "1.5", 1.5, None, 2**63, "", " 3"])
def test_a_bad_release_number_says_how_to_find_one(value: object) -> None:
    with pytest.raises(InvalidInput, match="bindrop releases"):
        parse_release_number(value)


def test_the_field_is_named_in_the_message() -> None:
    with pytest.raises(InvalidInput, match=r"^to 'x' is not valid"):
        parse_release_number("x", "to")


def test_a_deploy_and_a_rollback_carry_the_number_as_an_int() -> None:
    assert Deploy(parse_release_number("7")) == Deploy(7)
    assert Rollback(parse_release_number("2", "to")).to == 2
    assert describe(Deploy(7)) == "deploy of release 7"
    assert describe(Rollback(2)) == "rollback to release 2"


def test_reconcile_plans_with_the_stored_release_number() -> None:
    steps = plan_reconcile([DesiredApp("blog", True, 12)],
                           [ObservedUnit("bindrop-app-blog-11.service", "blog", "11", True)])
    assert Redeploy("blog", 12) in steps
    assert plan_reconcile([DesiredApp("blog", True, 12)], []) == [Recreate("blog", 12)]
