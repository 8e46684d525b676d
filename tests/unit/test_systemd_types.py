"""Enums tolerate new systemd strings; "given up" and counters are read as the lab found."""

from __future__ import annotations

import pytest

from bindrop.systemd.jobs import describe_exit, describe_job_failure, describe_unit_exit
from bindrop.systemd.types import (
    UINT64_MAX,
    ActiveState,
    JobResult,
    LoadState,
    SubState,
    SystemdStrEnum,
    UnitResult,
    UnitState,
    counter_or_none,
    is_given_up,
    parse_unit_listing,
)


def test_known_values_are_the_members() -> None:
    assert ActiveState("active") is ActiveState.ACTIVE
    assert SubState("auto-restart") is SubState.AUTO_RESTART
    assert LoadState("not-found") is LoadState.NOT_FOUND
    assert UnitResult("start-limit-hit") is UnitResult.START_LIMIT_HIT
    assert JobResult("done") == "done"


@pytest.mark.parametrize("enum", [ActiveState, SubState, LoadState, UnitResult, JobResult])
def test_an_unknown_value_from_a_newer_systemd_is_kept_verbatim(
    enum: type[SystemdStrEnum],
) -> None:
    value = enum("something-new")
    assert isinstance(value, enum)
    assert value == "something-new"
    assert str(value) == "something-new"
    assert value.value == "something-new"


def test_a_non_string_is_still_refused() -> None:
    with pytest.raises(ValueError):
        ActiveState(3)  # type: ignore[arg-type]


def state(active: str, sub: str, job_id: int = 0, result: str = "exit-code") -> UnitState:
    return UnitState(name="bindrop-x.service", active_state=ActiveState(active),
                     sub_state=SubState(sub), job_id=job_id, result=UnitResult(result))


@pytest.mark.parametrize(
    ("unit", "has_job", "given_up"),
    [
        # The start limit keeps Result=exit-code on 252: failed, no job, no auto-restart.
        (state("failed", "failed"), None, True),
        (state("failed", "failed", result="start-limit-hit"), None, True),
        # The restart job is already queued.
        (state("failed", "failed", job_id=92), None, False),
        (state("failed", "failed"), True, False),
        (state("activating", "auto-restart"), None, False),
        (state("active", "running", result="success"), None, False),
        (state("inactive", "dead", result="success"), None, False),
    ],
)
def test_is_given_up(unit: UnitState, has_job: bool | None, given_up: bool) -> None:
    assert is_given_up(unit, has_job) is given_up


@pytest.mark.parametrize(
    ("raw", "value"),
    [(UINT64_MAX, None), (0, 0), (241664, 241664), (None, None), ("12", None), (True, None)],
)
def test_counter_or_none(raw: object, value: int | None) -> None:
    assert counter_or_none(raw) == value


def test_parse_unit_listing() -> None:
    rows = [["bindrop-x.service", "x", "loaded", "active", "running", "",
             "/org/freedesktop/systemd1/unit/bindrop_2dx_2eservice", 0, "", "/"]]
    (listing,) = parse_unit_listing(rows)
    assert listing.name == "bindrop-x.service"
    assert listing.active_state is ActiveState.ACTIVE
    assert listing.sub_state is SubState.RUNNING
    assert listing.job_id == 0


@pytest.mark.parametrize(
    ("code", "status", "text"),
    [
        (1, 203, "status 203/EXEC"),
        (1, 1, "exited with status 1"),
        (2, 9, "killed by signal 9"),
        (3, 11, "killed by signal 11"),
        (0, 0, None),
    ],
)
def test_describe_exit(code: int, status: int, text: str | None) -> None:
    described = describe_exit(code, status)
    if text is None:
        assert described is None
    else:
        assert described is not None and text in described


@pytest.mark.parametrize(
    ("code", "status", "result", "restarts", "text"),
    [
        (1, 3, "exit-code", 5, "exited with status 3 after 5 restarts"),
        (1, 203, "exit-code", 0, "exited with status 203"),
        (2, 9, "signal", 1, "was killed by signal 9 after 1 restarts"),
        (0, 0, "timeout", 0, "ended (timeout)"),
    ],
)
def test_a_units_exit_reads_as_the_hub_has_always_said_it(
        code: int, status: int, result: str, restarts: int, text: str) -> None:
    state = UnitState("bindrop-x.service", result=UnitResult(result), n_restarts=restarts,
                      exec_main_code=code, exec_main_status=status)
    assert describe_unit_exit(state) == text


def test_failed_start_names_the_exit_status_and_the_next_step() -> None:
    message = describe_job_failure(
        "start", "bindrop-x.service", "failed",
        {"Result": "exit-code", "ExecMainCode": 1, "ExecMainStatus": 203},
    )
    assert message.startswith("start of bindrop-x.service failed: ")
    assert "203/EXEC" in message and "executable" in message
    assert "journalctl -u bindrop-x.service" in message


def test_failed_job_without_unit_properties_still_reads_well() -> None:
    message = describe_job_failure("stop", "bindrop-x.service", "timeout", {})
    assert "timed out" in message


def test_resource_failure_says_what_systemd_could_not_set_up() -> None:
    message = describe_job_failure(
        "start", "bindrop-x.service", "failed",
        {"Result": "resources", "ExecMainCode": 0, "ExecMainStatus": 0},
    )
    assert "could not set up" in message
