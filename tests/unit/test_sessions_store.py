"""Dashboard sessions in SQLite (hashed, expiring, standing for a token) and the login
limiter per address."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bindrop.dashboard.limiter import LoginLimiter, client_address
from bindrop.errors import Unauthorized
from bindrop.store import Store
from bindrop.store.sessions import PER_TOKEN_MAX


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "bindrop.db") as store:
        store.create_token("laptop", "read-only")
        yield store


def test_a_session_authenticates_as_its_token_and_only_its_hash_is_kept(store: Store) -> None:
    secret, expires = store.create_session("laptop")
    assert secret.startswith("bds_") and expires > datetime.now(UTC) + timedelta(hours=11)
    token = store.authenticate(secret)
    assert (token.name, token.scope) == ("laptop", "read-only")
    dump = "\n".join(store.db.iterdump())
    assert secret not in dump


def test_an_ended_expired_or_orphaned_session_authenticates_nothing(store: Store) -> None:
    ended, _ = store.create_session("laptop")
    store.end_session(ended)
    store.end_session(ended)
    expired, _ = store.create_session("laptop")
    later = datetime.now(UTC) + timedelta(hours=13)
    revoked, _ = store.create_session("laptop")
    for text, now in ((ended, None), (expired, later), ("bds_" + "a" * 43, None)):
        with pytest.raises(Unauthorized):
            store.authenticate(text, now)
    store.revoke_token("laptop")
    with pytest.raises(Unauthorized):
        store.authenticate(revoked)


def test_a_token_keeps_only_its_newest_sessions(store: Store) -> None:
    first, _ = store.create_session("laptop")
    for _ in range(PER_TOKEN_MAX):
        store.create_session("laptop")
    with pytest.raises(Unauthorized):
        store.authenticate(first)
    assert store.db.execute("SELECT count(*) FROM sessions").fetchone()[0] == PER_TOKEN_MAX


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_waits_after_too_many_failures_until_the_window_passes() -> None:
    clock = Clock()
    limiter = LoginLimiter(failures=3, window=60, clock=clock)
    for _ in range(3):
        assert limiter.wait_for("192.0.2.1") == 0
        limiter.failed("192.0.2.1")
        clock.now += 1
    assert limiter.wait_for("192.0.2.1") == pytest.approx(57)
    assert limiter.wait_for("192.0.2.2") == 0
    clock.now += 58
    assert limiter.wait_for("192.0.2.1") == 0


@pytest.mark.parametrize(("remote", "forwarded", "address"), [
    ("127.0.0.1", "203.0.113.9", "203.0.113.9"),
    ("127.0.0.1", "10.0.0.1, 203.0.113.9", "203.0.113.9"),  # the hop the proxy added
    ("198.51.100.4", "203.0.113.9", "198.51.100.4"),  # not from this machine: not trusted
    ("127.0.0.1", "", "127.0.0.1"),
])
def test_the_address_is_the_one_the_proxy_saw(remote: str, forwarded: str,
                                              address: str) -> None:
    assert client_address(remote, {"X-Forwarded-For": forwarded}) == address
