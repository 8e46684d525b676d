"""An app's environment: validated keys and values, all-or-nothing changes, masked display."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bindrop.errors import InvalidInput, NotFound
from bindrop.settings import Settings
from bindrop.store import AppConfig, Store, mask_env


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(Settings(root=tmp_path)) as s:
        s.create_app(AppConfig("blog"))
        yield s


def test_set_env_adds_and_replaces_without_touching_other_keys(store: Store) -> None:
    store.set_env("blog", {"GREETING": "hello", "LEVEL": "1"})
    store.set_env("blog", {"LEVEL": "2", "_extra": "x=y; z"})
    assert store.get_env("blog") == {"GREETING": "hello", "LEVEL": "2", "_extra": "x=y; z"}


def test_env_is_per_app(store: Store) -> None:
    store.create_app(AppConfig("shop"))
    store.set_env("blog", {"A": "1"})
    store.set_env("shop", {"A": "2"})
    assert store.get_env("blog") == {"A": "1"}
    assert store.get_env("shop") == {"A": "2"}


def test_empty_values_are_allowed(store: Store) -> None:
    store.set_env("blog", {"EMPTY": ""})
    assert store.get_env("blog") == {"EMPTY": ""}


@pytest.mark.parametrize("key", ["", "1ABC", "A-B", "A B", "A=B", "ÄPFEL"])
def test_invalid_env_key_writes_nothing(store: Store, key: str) -> None:
    store.set_env("blog", {"KEEP": "old"})
    with pytest.raises(InvalidInput, match="environment variable name"):
        store.set_env("blog", {"KEEP": "new", "OTHER": "x", key: "v"})
    assert store.get_env("blog") == {"KEEP": "old"}


@pytest.mark.parametrize("key", ["PORT", "BINDROP_APP", "BINDROP_RELEASE", "BINDROP_ANYTHING"])
def test_reserved_env_keys_are_refused(store: Store, key: str) -> None:
    with pytest.raises(InvalidInput, match=key):
        store.set_env("blog", {"FINE": "1", key: "8080"})
    assert store.get_env("blog") == {}


@pytest.mark.parametrize("value", ["line\nbreak", "carriage\rreturn", "nul\0byte"])
def test_value_with_a_line_break_or_nul_is_refused(store: Store, value: str) -> None:
    with pytest.raises(InvalidInput, match="SECRET"):
        store.set_env("blog", {"FINE": "1", "SECRET": value})
    assert store.get_env("blog") == {}


def test_value_that_is_not_text_is_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match="text"):
        store.set_env("blog", {"COUNT": 3})  # type: ignore[dict-item]
    assert store.get_env("blog") == {}


def test_unset_env_removes_only_the_given_keys(store: Store) -> None:
    store.set_env("blog", {"A": "1", "B": "2", "C": "3"})
    store.unset_env("blog", ["A", "C"])
    assert store.get_env("blog") == {"B": "2"}


def test_unsetting_a_key_that_is_not_set_names_it_and_removes_nothing(store: Store) -> None:
    store.set_env("blog", {"A": "1", "B": "2"})
    with pytest.raises(NotFound, match="MISSING"):
        store.unset_env("blog", ["A", "MISSING"])
    assert store.get_env("blog") == {"A": "1", "B": "2"}


def test_env_of_a_missing_app_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="bindrop create ghost"):
        store.set_env("ghost", {"A": "1"})
    with pytest.raises(NotFound):
        store.get_env("ghost")
    with pytest.raises(NotFound):
        store.unset_env("ghost", ["A"])


@pytest.mark.parametrize(
    "key",
    [
        "SECRET_KEY_BASE",
        "CLIENT_SECRET",
        "GITHUB_TOKEN",
        "DB_PASSWORD",
        "SMTP_PASS",
        "api_key",
        "PRIVATE_PEM",
        "AWS_CREDENTIALS",
        "BASIC_AUTH",
        "SENTRY_DSN",
        "DATABASE_URL",
    ],
)
def test_mask_env_hides_secret_looking_values(key: str) -> None:
    masked = mask_env({key: "hunter2-very-secret", "LOG_LEVEL": "debug"})
    assert masked[key] == "••••"
    assert masked["LOG_LEVEL"] == "debug"


@pytest.mark.parametrize("key", ["LOG_LEVEL", "PUBLIC_URL", "WORKERS", "TZ"])
def test_mask_env_shows_ordinary_values(key: str) -> None:
    assert mask_env({key: "value"}) == {key: "value"}


def test_mask_env_does_not_change_its_argument() -> None:
    env = {"API_TOKEN": "t"}
    mask_env(env)
    assert env == {"API_TOKEN": "t"}
