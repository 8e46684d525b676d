"""Events: past-tense history, listed oldest first, tailed by id, kept after their app."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from bindrop.errors import InvalidInput
from bindrop.settings import Settings
from bindrop.store import AppConfig, Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(Settings(root=tmp_path)) as s:
        yield s


def test_added_event_reads_back_with_its_data(store: Store) -> None:
    event = store.add_event(
        "deploy_failed", "blog", "release 3 did not become ready", {"release": 3}
    )
    assert (event.kind, event.app, event.message) == (
        "deploy_failed",
        "blog",
        "release 3 did not become ready",
    )
    assert event.data == {"release": 3}
    assert event.at.tzinfo is not None
    assert store.list_events() == [event]


def test_events_are_listed_oldest_first_limited_to_the_newest(store: Store) -> None:
    ids = [store.add_event("app_created", message=str(n)).id for n in range(5)]
    assert ids == sorted(ids)
    assert [e.id for e in store.list_events(limit=3)] == ids[2:]
    assert [e.id for e in store.list_events()] == ids


def test_after_id_tails_the_log(store: Store) -> None:
    ids = [store.add_event("app_created").id for _ in range(5)]
    assert [e.id for e in store.list_events(after_id=ids[1], limit=2)] == ids[2:4]
    assert store.list_events(after_id=ids[-1]) == []
    later = store.add_event("app_gave_up")
    assert store.list_events(after_id=ids[-1]) == [later]


def test_events_of_one_app(store: Store) -> None:
    store.add_event("deploy_succeeded", "blog")
    store.add_event("deploy_succeeded", "shop")
    store.add_event("backup_finished")
    assert [e.app for e in store.list_events("blog")] == ["blog"]
    assert len(store.list_events()) == 3


@pytest.mark.parametrize("kind", ["", "DeployFailed", "deploy failed", "deploy-failed", "_x"])
def test_event_kind_must_be_snake_case(store: Store, kind: str) -> None:
    with pytest.raises(InvalidInput, match="event kind"):
        store.add_event(kind)
    assert store.list_events() == []


@pytest.mark.parametrize("data", [{"when": object()}, {"ratio": math.nan}, ["not", "a", "map"]])
def test_event_data_that_is_not_a_json_object_is_refused_and_not_written(
    store: Store, data: object
) -> None:
    with pytest.raises(InvalidInput, match="data"):
        store.add_event("deploy_failed", "blog", data=data)  # type: ignore[arg-type]
    assert store.list_events() == []


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_limit_out_of_range_is_refused(store: Store, limit: int) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        store.list_events(limit=limit)


def test_events_about_a_deleted_app_remain(store: Store) -> None:
    store.create_app(AppConfig("blog"))
    store.add_event("app_created", "blog")
    store.delete_app("blog")
    store.add_event("app_deleted", "blog")
    assert [e.kind for e in store.list_events("blog")] == ["app_created", "app_deleted"]
