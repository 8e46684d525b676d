"""What the API reads from requests: checked at the edge, with a message saying what to send."""

from __future__ import annotations

import pytest

from bindrop.api.bodies import (
    parse_changes,
    parse_command,
    parse_env,
    parse_limit,
    parse_new_app,
    query_flag,
    query_int,
)
from bindrop.api.events import sse
from bindrop.api.logs import journal_argv, parse_entry
from bindrop.errors import InvalidInput
from bindrop.hub.config import UPDATABLE


def test_a_new_app_reads_limits_as_people_write_them() -> None:
    config = parse_new_app({"name": "blog", "hosts": ["blog.test"], "memory_max": "256M",
                            "cpu_quota": "50%", "tasks_max": 64})
    assert (config.memory_max, config.cpu_quota, config.tasks_max) == (256 * 1024**2, 50, 64)
    assert config.desired_state == "stopped"


@pytest.mark.parametrize(("body", "says"), [
    ({}, '"name"'),
    ({"name": "blog"}, '"hosts"'),
    ({"name": "blog", "hosts": "blog.test"}, "list"),
    ({"name": "blog", "hosts": ["b.test"], "system": True}, "unknown field 'system'"),
    ({"name": "blog", "hosts": ["b.test"], "memory_max": True}, "memory_max"),
    ({"name": "blog", "hosts": ["b.test"], "cpu_quota": "lots"}, "CPU quota"),
])
def test_a_bad_new_app_says_what_to_send(body: dict[str, object], says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_new_app(body)
    assert says in refused.value.message


def test_changes_may_remove_a_limit_with_null() -> None:
    assert parse_changes({"memory_max": None}, UPDATABLE, "x") == {"memory_max": None}
    assert parse_limit("tasks_max", "12") == 12


def test_env_values_must_be_text() -> None:
    assert parse_env({"A": "1"}) == {"A": "1"}
    with pytest.raises(InvalidInput, match="must be text"):
        parse_env({"A": 1})
    with pytest.raises(InvalidInput, match="JSON object"):
        parse_env({})


def test_cmd_is_a_json_list_of_strings() -> None:
    assert parse_command('["./server", "--port", "$PORT"]') == ["./server", "--port", "$PORT"]
    assert parse_command(None) == []
    for bad in ("./server", '{"a": 1}', "[1]"):
        with pytest.raises(InvalidInput, match="JSON list"):
            parse_command(bad)


def test_query_values_are_checked() -> None:
    assert query_flag({"follow": "1"}, "follow") and not query_flag({}, "follow")
    assert query_int({"lines": "20"}, "lines", 100, 0, 1000) == 20
    with pytest.raises(InvalidInput, match="follow=1"):
        query_flag({"follow": "maybe"}, "follow")
    with pytest.raises(InvalidInput, match="0 to 1000"):
        query_int({"lines": "-3"}, "lines", 100, 0, 1000)


def test_a_server_sent_event_carries_its_id_kind_and_one_data_line() -> None:
    assert sse("event", {"a": "x\ny"}, 7) == b'id: 7\nevent: event\ndata: {"a":"x\\ny"}\n\n'
    assert sse("state", {}) == b"event: state\ndata: {}\n\n"


def test_journalctl_resumes_after_a_cursor_instead_of_counting_lines() -> None:
    argv = journal_argv(["nsenter"], "blog", lines=5, follow=True, cursor="s=abc")
    assert argv[0] == "nsenter" and "--after-cursor=s=abc" in argv and "-n" not in argv
    assert argv[-2:] == ["--follow", "BINDROP_APP=blog"]
    assert "-n" in journal_argv([], "blog", lines=5, follow=False, cursor=None)


def test_a_journal_entry_becomes_the_api_s_line() -> None:
    line = (b'{"__CURSOR":"c1","__REALTIME_TIMESTAMP":"1700000000000000",'
            b'"MESSAGE":[104,105,255],"_SYSTEMD_UNIT":"u","BINDROP_RELEASE":"2",'
            b'"BINDROP_PROCESS":"worker","BINDROP_INSTANCE":"2"}')
    assert parse_entry(line) == {"cursor": "c1", "time": 1700000000000000, "unit": "u",
                                 "release": "2", "process": "worker", "instance": "2",
                                 "message": "hi\ufffd"}
    assert parse_entry(b"not json") is None
