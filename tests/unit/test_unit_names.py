"""Names of apps, releases and env keys (bindrop.domain.names), units and dynamic users
(bindrop.units.names)."""

from __future__ import annotations

import re

import pytest

from bindrop.domain.names import (
    RESERVED_ENV_KEYS,
    validate_app_name,
    validate_env_key,
    validate_release_id,
)
from bindrop.errors import InvalidInput
from bindrop.units import app_unit_name, dynamic_user_name, parse_app_unit_name

# systemd's strict user-name rule (valid_user_group_name without RELAX), and utmp's 31 chars.
USER_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_-]{0,30}")


@pytest.mark.parametrize("name", ["a", "blog", "my-blog", "0", "9lives", "a-b-c", "x" * 40])
def test_valid_app_names_are_returned_unchanged(name: str) -> None:
    assert validate_app_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "Blog", "-blog", "blog-", "my_blog", "my.blog", "blög", "a b", "x" * 41, "blog\n"],
)
def test_invalid_app_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        validate_app_name(name)


def test_app_name_error_says_what_is_allowed() -> None:
    with pytest.raises(InvalidInput) as e:
        validate_app_name("Blog")
    assert e.value.message == (
        "app name 'Blog' is not valid: use 1-40 lowercase letters, digits and '-', "
        "starting and ending with a letter or digit"
    )
    assert e.value.code == "invalid_input"


@pytest.mark.parametrize("rid", ["1", "42", "v3", "2024.06.01", "1.0.", "a" * 20])
def test_valid_release_ids_are_returned_unchanged(rid: str) -> None:
    assert validate_release_id(rid) == rid


@pytest.mark.parametrize("rid", ["", ".1", "V3", "a" * 21, "1_0", "1 0", "1\n"])
def test_invalid_release_ids_are_refused(rid: str) -> None:
    with pytest.raises(InvalidInput):
        validate_release_id(rid)


@pytest.mark.parametrize("rid", ["1-2", "-1", "1-", "2024-06-01"])
def test_release_id_with_hyphen_is_refused(rid: str) -> None:
    with pytest.raises(InvalidInput, match="no '-'"):
        validate_release_id(rid)


@pytest.mark.parametrize("key", ["A", "_", "DATABASE_URL", "lower_case", "X1", "_PRIVATE"])
def test_valid_env_keys_are_returned_unchanged(key: str) -> None:
    assert validate_env_key(key) == key


@pytest.mark.parametrize("key", ["", "1X", "A-B", "A B", "A=B", "Ä", "A.B", "A\n"])
def test_invalid_env_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidInput, match="letters, digits and '_'"):
        validate_env_key(key)


@pytest.mark.parametrize("key", ["PORT", "BINDROP_APP", "BINDROP_RELEASE"])
def test_reserved_env_keys_are_refused_with_a_reason(key: str) -> None:
    assert key in RESERVED_ENV_KEYS
    with pytest.raises(InvalidInput, match="set by bindrop for every release"):
        validate_env_key(key)


@pytest.mark.parametrize("key", ["port", "BINDROP_URL", "BINDROP_TOKEN", "PORTS"])
def test_names_near_the_reserved_ones_are_allowed(key: str) -> None:
    assert validate_env_key(key) == key


@pytest.mark.parametrize(
    ("app", "release", "unit"),
    [
        ("blog", "1", "bindrop-app-blog-1.service"),
        ("my-blog", "42", "bindrop-app-my-blog-42.service"),
        ("a", "2024.06.01", "bindrop-app-a-2024.06.01.service"),
    ],
)
def test_app_unit_name_joins_app_and_release(app: str, release: str, unit: str) -> None:
    assert app_unit_name(app, release) == unit


@pytest.mark.parametrize(("app", "release"), [("Blog", "1"), ("blog", "1-2"), ("", "1")])
def test_app_unit_name_refuses_invalid_parts(app: str, release: str) -> None:
    with pytest.raises(InvalidInput):
        app_unit_name(app, release)


@pytest.mark.parametrize(
    ("unit", "parsed"),
    [
        ("bindrop-app-blog-1.service", ("blog", "1")),
        ("bindrop-app-0-0.service", ("0", "0")),
        ("bindrop-app-a-2024.06.01.service", ("a", "2024.06.01")),
    ],
)
def test_parse_app_unit_name_splits_app_and_release(unit: str, parsed: tuple[str, str]) -> None:
    assert parse_app_unit_name(unit) == parsed


@pytest.mark.parametrize(
    ("unit", "parsed"),
    [
        ("bindrop-app-my-blog-42.service", ("my-blog", "42")),
        ("bindrop-app-a-b-c-d-7.service", ("a-b-c-d", "7")),
        ("bindrop-app-app-1-2.service", ("app-1", "2")),
    ],
)
def test_parse_app_unit_name_with_hyphenated_app(unit: str, parsed: tuple[str, str]) -> None:
    assert parse_app_unit_name(unit) == parsed


@pytest.mark.parametrize(
    "unit",
    [
        "bindrop.service",
        "bindrop-proxy.service",
        "bindrop-proxy.socket",
        "bindrop.slice",
        "bindrop-app-blog.service",
        "bindrop-app-blog-1.timer",
        "bindrop-app--1.service",
        "bindrop-app-blog-.service",
        "bindrop-app-Blog-1.service",
        "bindrop-app-blog-1_0.service",
        "sshd.service",
        "app-blog-1.service",
        "",
    ],
)
def test_parse_app_unit_name_is_none_for_other_units(unit: str) -> None:
    assert parse_app_unit_name(unit) is None


@pytest.mark.parametrize(
    ("app", "release"), [("blog", "1"), ("my-blog", "2.0"), ("x" * 40, "9" * 20), ("a-1", "1")]
)
def test_parse_app_unit_name_inverts_app_unit_name(app: str, release: str) -> None:
    assert parse_app_unit_name(app_unit_name(app, release)) == (app, release)


@pytest.mark.parametrize(
    ("app", "user"),
    [
        ("blog", "bindrop-blog"),
        ("my-blog", "bindrop-my-blog"),
        ("x" * 23, "bindrop-" + "x" * 23),
    ],
)
def test_short_app_names_give_bindrop_dash_app(app: str, user: str) -> None:
    assert dynamic_user_name(app) == user


@pytest.mark.parametrize("app", ["x" * 24, "x" * 40, "a-" * 19 + "ab", "abcdefghijklm-pqrstuvwxyz"])
def test_long_app_names_give_a_valid_shortened_user_name(app: str) -> None:
    user = dynamic_user_name(app)
    assert len(user) <= 31
    assert USER_NAME.fullmatch(user), user
    assert user.startswith("bindrop-" + app[:8])
    assert not user.isdigit()


@pytest.mark.parametrize(
    ("app", "user"),
    [
        ("x" * 40, "bindrop-xxxxxxxxxxxxxx_bd913ff6"),
        # the cut falls on a '-', which is dropped rather than doubled before the '_'
        ("abcdefghijklm-pqrstuvwxyz", "bindrop-abcdefghijklm_b7d33112"),
    ],
)
def test_shortened_user_name_is_stable_across_versions(app: str, user: str) -> None:
    # A changed name would give the app a new UID and strand its state directory's owner.
    assert dynamic_user_name(app) == user


def test_long_apps_sharing_a_prefix_get_different_users() -> None:
    users = {dynamic_user_name("x" * 30 + suffix) for suffix in ("a", "b", "aa", "ab")}
    assert len(users) == 4


def test_a_shortened_user_never_equals_a_short_apps_user() -> None:
    long_app = "x" * 40
    shortened = dynamic_user_name(long_app)
    # the short app whose plain user name looks most like the shortened one
    look_alike = shortened.removeprefix("bindrop-").replace("_", "-")
    assert dynamic_user_name(look_alike) != shortened


def test_dynamic_user_name_refuses_an_invalid_app() -> None:
    with pytest.raises(InvalidInput):
        dynamic_user_name("Not Valid")
