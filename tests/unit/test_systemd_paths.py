"""Unit object paths: sd-bus label escaping, both ways."""

from __future__ import annotations

import pytest

from bindrop.systemd.paths import (
    UNIT_PATH_PREFIX,
    escape_label,
    unescape_label,
    unit_name_from_path,
    unit_path,
    unit_path_prefix,
)

ESCAPES = [
    ("bindrop-x.service", "bindrop_2dx_2eservice"),
    ("dbus.service", "dbus_2eservice"),
    ("-.slice", "_2d_2eslice"),
    ("bindrop-app-blog-3.service", "bindrop_2dapp_2dblog_2d3_2eservice"),
    ("0day.service", "_30day_2eservice"),
    ("a0.service", "a0_2eservice"),
    ("etc-machine\\x2did.mount", "etc_2dmachine_5cx2did_2emount"),
    ("my_app@1.service", "my_5fapp_401_2eservice"),
    ("Bindrop.Timer", "Bindrop_2eTimer"),
    ("é.service", "_c3_a9_2eservice"),
    ("", "_"),
]


@pytest.mark.parametrize(("name", "label"), ESCAPES)
def test_escape_label_matches_systemd(name: str, label: str) -> None:
    assert escape_label(name) == label


@pytest.mark.parametrize(("name", "label"), ESCAPES)
def test_unescape_label_inverts_escape(name: str, label: str) -> None:
    assert unescape_label(label) == name


def test_unit_path_of_a_bindrop_unit() -> None:
    assert unit_path("bindrop-x.service") == "/org/freedesktop/systemd1/unit/bindrop_2dx_2eservice"


@pytest.mark.parametrize(
    "path",
    [
        "/org/freedesktop/systemd1",
        "/org/freedesktop/systemd1/job/9",
        "/org/freedesktop/systemd1/unit/",
        "/org/freedesktop/systemd1/unit/a/b",
        "/org/freedesktop/systemd1/unit/bad_zz",
        "/org/freedesktop/systemd1/unit/trailing_2",
    ],
)
def test_unit_name_from_path_is_none_for_other_paths(path: str) -> None:
    assert unit_name_from_path(path) is None


def test_unit_name_from_path_round_trips() -> None:
    for name, _ in ESCAPES[:-1]:
        assert unit_name_from_path(unit_path(name)) == name


@pytest.mark.parametrize(
    ("prefix", "name", "matches"),
    [
        ("bindrop-", "bindrop-x.service", True),
        ("bindrop-", "bindrop.service", False),
        ("bindrop-", "bindropx.service", False),
        ("bindrop-app-", "bindrop-app-blog-1.service", True),
        ("bindrop-app-", "bindrop-proxy.service", False),
        ("1", "1x.service", True),
        ("", "anything.service", True),
    ],
)
def test_path_prefix_matches_exactly_the_names_with_the_prefix(
    prefix: str, name: str, matches: bool
) -> None:
    assert unit_path(name).startswith(unit_path_prefix(prefix)) is matches
    assert name.startswith(prefix) is matches


def test_empty_prefix_is_the_unit_namespace() -> None:
    assert unit_path_prefix("") == UNIT_PATH_PREFIX
