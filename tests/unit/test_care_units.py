"""Care runs as units (pure parts): the unit a run becomes, the disk trend, alert webhooks."""

from __future__ import annotations

import pytest

from bindrop.dashboard.care_pages import trends
from bindrop.errors import InvalidInput
from bindrop.store.alerts import parse_webhook_url
from bindrop.units.care import build_care_unit, care_unit_name

ENV = {"BINDROP_ROOT": "/", "BINDROP_SERVER": "unix:/run/bindrop/control.sock"}


def test_a_care_run_is_a_oneshot_that_runs_this_bindrop_and_is_collected() -> None:
    spec = build_care_unit("backup", "17", "/opt/bindrop/bin/python", ["blog"], ENV)
    assert spec.name == "bindrop-care-backup-17.service"
    assert spec.get("Type") == "oneshot"
    assert spec.get("CollectMode") == "inactive-or-failed"
    assert spec.get("ExecStart") == [("/opt/bindrop/bin/python", [
        "/opt/bindrop/bin/python", "-m", "bindrop", "care-run", "backup", "blog"], False)]
    env = spec.get("Environment")
    assert "BINDROP_CARE=backup" in env and "BINDROP_CARE_RUN=17" in env  # type: ignore[operator]
    assert "BINDROP_SERVER=unix:/run/bindrop/control.sock" in env  # type: ignore[operator]
    assert b"BINDROP_CARE=backup" in spec.get("LogExtraFields")  # type: ignore[operator]


def test_a_dollar_in_an_argument_is_not_expanded_by_systemd() -> None:
    spec = build_care_unit("disk-check", "3", "/usr/bin/python3", ["--threshold", "$HOME"], ENV)
    assert spec.get("ExecStart")[0][1][-1] == "$$HOME"  # type: ignore[index]


@pytest.mark.parametrize(("kind", "run", "args"), [
    ("rm", "1", []), ("backup", "1; reboot", []), ("backup", "", []),
    ("backup", "1", ["a\x00b"]), ("verify", "2", ["x\ny"]),
])
def test_an_unknown_kind_a_bad_run_or_a_control_character_is_refused(
    kind: str, run: str, args: list[str]
) -> None:
    with pytest.raises(InvalidInput):
        build_care_unit(kind, run, "/usr/bin/python3", args, ENV)


def test_unit_names_say_kind_and_run() -> None:
    assert care_unit_name("restore-swap", "42") == "bindrop-care-restore-swap-42.service"


def test_the_trend_is_one_point_per_check_of_that_filesystem() -> None:
    report = {"filesystems": [{"mount": "/"}, {"mount": "/data"}], "samples": [
        {"at": "a", "filesystems": [{"mount": "/", "percent": 50.0}]},
        {"at": "b", "filesystems": [{"mount": "/", "percent": 100.0},
                                    {"mount": "/data", "percent": 10.0}]},
    ]}
    root, data = trends(report)
    assert root["points"] == "0.0,20.0 240.0,0.0" and root["checks"] == 2
    assert data["checks"] == 1 and data["last"] == 10.0


@pytest.mark.parametrize("url", ["https://hooks.example.com/x?token=1", "http://127.0.0.1:9/h"])
def test_a_webhook_is_an_http_url(url: str) -> None:
    assert parse_webhook_url(url) == url


@pytest.mark.parametrize("url", ["ftp://x/y", "hooks.example.com", "http:///nohost",
                                 "https://x/ y", "https://x/\r\nHost: evil", 42, None,
                                 "https://x/" + "a" * 3000])
def test_anything_else_is_not_a_webhook(url: object) -> None:
    with pytest.raises(InvalidInput):
        parse_webhook_url(url)
