"""Tokens: only a hash is stored; wrong, revoked and expired tokens fail alike."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bindrop.api.auth import local_caller, parse_bearer
from bindrop.errors import Conflict, Forbidden, InvalidInput, Unauthorized
from bindrop.store import Store
from bindrop.store.tokens import UNAUTHORIZED, hash_token, new_token, parse_duration


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "bindrop.db")


def test_a_token_is_bd_and_43_url_safe_characters_and_never_repeats() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(t.startswith("bd_") and len(t) == 46 for t in tokens)
    assert all(set(t[3:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789-_") for t in tokens)


def test_the_hash_is_sha256_hex_of_the_text() -> None:
    assert hash_token("bd_x") == hashlib.sha256(b"bd_x").hexdigest()
    assert hash_token("bd_x") != hash_token("bd_y")


def test_only_the_hash_is_stored(store: Store, tmp_path: Path) -> None:
    text, _ = store.create_token("ci", "admin")
    store.close()
    dump = "\n".join(sqlite3.connect(tmp_path / "bindrop.db").iterdump())
    assert text not in dump and text[3:] not in dump
    assert hash_token(text) in dump


def test_a_token_authenticates_until_revoked(store: Store) -> None:
    text, _ = store.create_token("ci", "read-only")
    token = store.authenticate(text)
    assert (token.name, token.scope) == ("ci", "read-only")
    assert store.list_tokens()[0].last_used_at is not None
    store.revoke_token("ci")
    with pytest.raises(Unauthorized) as revoked:
        store.authenticate(text)
    with pytest.raises(Unauthorized) as wrong:
        store.authenticate(new_token())
    assert revoked.value.message == wrong.value.message == UNAUTHORIZED


def test_an_expired_token_fails_like_a_wrong_one(store: Store) -> None:
    text, token = store.create_token("brief", "admin", timedelta(hours=1))
    assert token.expires_at is not None
    store.authenticate(text, now=token.expires_at - timedelta(seconds=1))
    with pytest.raises(Unauthorized, match="not valid"):
        store.authenticate(text, now=token.expires_at)


def test_names_are_unique_even_after_revoking(store: Store) -> None:
    store.create_token("ci", "admin")
    store.revoke_token("ci")
    with pytest.raises(Conflict):
        store.create_token("ci", "admin")


@pytest.mark.parametrize("name", ["", "CI", "-x", "a b", "x" * 65, "ci/"])
def test_a_bad_token_name_is_refused_before_writing(store: Store, name: str) -> None:
    with pytest.raises(InvalidInput):
        store.create_token(name, "admin")
    assert store.list_tokens() == []


def test_a_bad_scope_is_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match="admin"):
        store.create_token("ci", "root")  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "seconds"), [
    ("90d", 90 * 86400), ("12h", 12 * 3600), ("30m", 1800), ("2w", 14 * 86400),
    ("1y", 365 * 86400), (" 7D ", 7 * 86400),
])
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0d", "90", "d", "1.5d", "11y", "-1d", "90 days"])
def test_bad_durations_say_what_to_write(text: str) -> None:
    with pytest.raises(InvalidInput, match="90d"):
        parse_duration(text)


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer bd_abc", "bd_abc"), ("bearer bd_abc", "bd_abc"), ("  Bearer   bd_abc ", "bd_abc"),
])
def test_a_bearer_header_gives_its_token(header: str, token: str) -> None:
    assert parse_bearer(header) == token


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcg==",
                                    "bd_abc", "Bearer a b", "Token bd_abc"])
def test_anything_else_is_unauthorized_and_names_the_header(header: str | None) -> None:
    with pytest.raises(Unauthorized, match="Authorization: Bearer"):
        parse_bearer(header)


def test_the_local_socket_admits_root_only() -> None:
    assert local_caller(0).admin
    with pytest.raises(Forbidden, match="root"):
        local_caller(12345)
    with pytest.raises(Forbidden):
        local_caller(None)


def test_expiry_is_stored_in_utc(store: Store) -> None:
    _, token = store.create_token("t", "admin", timedelta(days=1))
    assert token.expires_at is not None and token.expires_at.tzinfo is not None
    assert abs(token.expires_at - datetime.now(UTC) - timedelta(days=1)) < timedelta(minutes=1)
