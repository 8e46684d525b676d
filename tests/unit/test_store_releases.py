"""Releases: numbered per app, one live at a time, collected oldest first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bindrop.errors import Conflict, InvalidInput, NotFound
from bindrop.settings import Settings
from bindrop.store import AppConfig, Release, Store
from bindrop.units.names import app_unit_name


def sha(n: int) -> str:
    return f"{n:064x}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(Settings(root=tmp_path)) as s:
        s.create_app(AppConfig("blog"))
        yield s


def add(store: Store, n: int, app: str = "blog") -> Release:
    return store.add_release(app, sha(n), 1000 + n, "binary", [], "alice")


def test_new_release_is_pending_and_reads_back(store: Store) -> None:
    release = store.add_release("blog", sha(1), 4096, "binary", ["--port", "$PORT"], "alice")
    assert release.number == 1
    assert release.status == "pending"
    assert release.reason is None
    assert release.command == ("--port", "$PORT")
    assert (release.sha256, release.size, release.kind) == (sha(1), 4096, "binary")
    assert release.created_by == "alice"
    assert store.get_release("blog", 1) == release


def test_release_numbers_start_at_one_and_increase_per_app(store: Store) -> None:
    store.create_app(AppConfig("shop"))
    assert [add(store, n).number for n in range(3)] == [1, 2, 3]
    assert add(store, 9, app="shop").number == 1


def test_release_numbers_are_not_reused_after_deleting_the_newest(store: Store) -> None:
    add(store, 1)
    add(store, 2)
    store.delete_releases("blog", [2])
    assert add(store, 3).number == 3


def test_the_release_number_is_the_unit_name_token(store: Store) -> None:
    for n in range(12):
        release = add(store, n)
    assert release.release_id == "12"
    assert app_unit_name("blog", release.release_id) == "bindrop-app-blog-12.service"


def test_bundle_release_keeps_its_command(store: Store) -> None:
    release = store.add_release("blog", sha(1), 10, "bundle", ["./bin/server", "-v"], "ci")
    assert store.get_release("blog", 1).command == ("./bin/server", "-v")
    assert release.kind == "bundle"


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((sha(1), 10, "bundle", []), "needs a command"),
        ((sha(1), 10, "bundle", [" "]), "needs a command"),
        (("A" * 64, 10, "binary", []), "sha256"),
        (("abc", 10, "binary", []), "sha256"),
        ((sha(1), 0, "binary", []), "size"),
        ((sha(1), True, "binary", []), "size"),
        ((sha(1), 10, "zip", []), "kind"),
        ((sha(1), 10, "binary", "./server"), "command"),
        ((sha(1), 10, "binary", ["a\0b"]), "command"),
    ],
)
def test_invalid_release_is_refused_and_nothing_written(
    store: Store, args: tuple[object, ...], match: str
) -> None:
    sha256, size, kind, command = args
    with pytest.raises(InvalidInput, match=match):
        store.add_release("blog", sha256, size, kind, command, "alice")  # type: ignore[arg-type]
    assert store.list_releases("blog") == []
    assert add(store, 1).number == 1


def test_release_of_a_missing_app_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="bindrop create ghost"):
        add(store, 1, app="ghost")
    with pytest.raises(NotFound):
        store.list_releases("ghost")


def test_missing_release_is_not_found(store: Store) -> None:
    add(store, 1)
    with pytest.raises(NotFound, match="no release 2"):
        store.get_release("blog", 2)
    with pytest.raises(NotFound):
        store.set_release_status("blog", 2, "live")


def test_releases_are_listed_newest_first(store: Store) -> None:
    for n in range(4):
        add(store, n)
    assert [r.number for r in store.list_releases("blog")] == [4, 3, 2, 1]


def test_marking_a_release_live_demotes_the_previous_live_one(store: Store) -> None:
    add(store, 1)
    add(store, 2)
    add(store, 3)
    store.set_release_status("blog", 1, "live")
    store.set_release_status("blog", 2, "failed", "readiness check timed out")
    live = store.set_release_status("blog", 3, "live")
    assert live.status == "live"
    statuses = {r.number: r.status for r in store.list_releases("blog")}
    assert statuses == {1: "previous", 2: "failed", 3: "live"}


def test_marking_the_live_release_live_again_keeps_it_live(store: Store) -> None:
    add(store, 1)
    store.set_release_status("blog", 1, "live")
    assert store.set_release_status("blog", 1, "live").status == "live"


def test_live_releases_of_other_apps_are_untouched(store: Store) -> None:
    store.create_app(AppConfig("shop"))
    add(store, 1, app="shop")
    add(store, 2)
    store.set_release_status("shop", 1, "live")
    store.set_release_status("blog", 1, "live")
    assert store.get_release("shop", 1).status == "live"


def test_failed_status_keeps_its_reason_until_changed(store: Store) -> None:
    add(store, 1)
    failed = store.set_release_status("blog", 1, "failed", "exited with status 1")
    assert (failed.status, failed.reason) == ("failed", "exited with status 1")
    assert store.get_release("blog", 1).reason == "exited with status 1"
    assert store.set_release_status("blog", 1, "live").reason is None


def test_unknown_status_is_refused(store: Store) -> None:
    add(store, 1)
    with pytest.raises(InvalidInput, match="status"):
        store.set_release_status("blog", 1, "running")  # type: ignore[arg-type]
    assert store.get_release("blog", 1).status == "pending"


def test_collect_keeps_the_newest_five_and_the_live_one(store: Store) -> None:
    for n in range(8):
        add(store, n)
    store.set_release_status("blog", 2, "live")
    assert [r.number for r in store.releases_to_collect("blog")] == [3, 1]


def test_collect_never_offers_the_current_release(store: Store) -> None:
    for n in range(4):
        add(store, n)
    store.update_app("blog", current_release=1)
    store.set_release_status("blog", 2, "live")
    assert [r.number for r in store.releases_to_collect("blog", keep=1)] == [3]
    assert [r.number for r in store.releases_to_collect("blog", keep=0)] == [4, 3]


def test_collect_offers_nothing_when_there_are_few_releases(store: Store) -> None:
    for n in range(5):
        add(store, n)
    assert store.releases_to_collect("blog") == []


def test_collect_refuses_a_negative_keep(store: Store) -> None:
    with pytest.raises(InvalidInput, match="keep"):
        store.releases_to_collect("blog", keep=-1)


def test_deleting_the_live_or_current_release_is_refused_and_deletes_nothing(
    store: Store,
) -> None:
    for n in range(3):
        add(store, n)
    store.set_release_status("blog", 2, "live")
    store.update_app("blog", current_release=3)
    for number in (2, 3):
        with pytest.raises(Conflict, match=f"release {number}"):
            store.delete_releases("blog", [1, number])
    assert [r.number for r in store.list_releases("blog")] == [3, 2, 1]


def test_deleting_a_missing_release_deletes_nothing(store: Store) -> None:
    add(store, 1)
    with pytest.raises(NotFound, match="no release 7"):
        store.delete_releases("blog", [1, 7])
    assert [r.number for r in store.list_releases("blog")] == [1]


def test_delete_returns_blobs_no_release_uses_any_more(store: Store) -> None:
    store.create_app(AppConfig("shop"))
    store.add_release("blog", sha(1), 10, "binary", [], "alice")
    store.add_release("blog", sha(2), 10, "binary", [], "alice")
    store.add_release("blog", sha(2), 10, "binary", [], "alice")
    store.add_release("blog", sha(3), 10, "binary", [], "alice")
    store.add_release("shop", sha(1), 10, "binary", [], "alice")
    assert store.delete_releases("blog", [1, 2]) == set()
    assert store.delete_releases("blog", [3]) == {sha(2)}
    assert store.referenced_blobs() == {sha(1), sha(3)}


def test_referenced_blobs_covers_every_app(store: Store) -> None:
    store.create_app(AppConfig("shop"))
    add(store, 1)
    add(store, 2, app="shop")
    assert store.referenced_blobs() == {sha(1), sha(2)}
