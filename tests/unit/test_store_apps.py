"""Apps in the store: validated at the edge, hosts owned by one app, deleted whole."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from bindrop.errors import Conflict, InvalidInput, NotFound
from bindrop.settings import Settings
from bindrop.store import AppConfig, Store

SHA_A = "a" * 64
SHA_B = "b" * 64


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(Settings(root=tmp_path)) as s:
        yield s


def test_created_app_reads_back_with_its_defaults(store: Store) -> None:
    created = store.create_app(AppConfig("blog", hosts=["blog.example.com"]))
    app = store.get_app("blog")
    assert app == created
    assert app.hosts == ("blog.example.com",)
    assert app.health_path is None
    assert app.health_timeout_s == 30.0
    assert app.idle_timeout_s == 900.0
    assert app.body_limit == 100 * 1024 * 1024
    assert app.desired_state == "running"
    assert (app.on_demand, app.no_overlap, app.system) == (False, False, False)
    assert app.current_release is None
    assert app.created_at is not None and app.created_at == app.updated_at


def test_every_field_round_trips(store: Store) -> None:
    config = AppConfig(
        "api",
        hosts=["api.example.com", "example.com/api"],
        health_path="/healthz?full=1",
        health_timeout_s=5,
        memory_max=256 * 1024**2,
        cpu_quota=150,
        tasks_max=64,
        on_demand=True,
        idle_timeout_s=60.5,
        no_overlap=True,
        desired_state="stopped",
        system=True,
        maintenance_message="Back at noon.",
        body_limit=1024,
    )
    assert store.create_app(config) == config
    assert store.get_app("api") == config


def test_creating_an_existing_app_is_a_conflict(store: Store) -> None:
    store.create_app(AppConfig("blog", hosts=["blog.example.com"]))
    with pytest.raises(Conflict, match="exists"):
        store.create_app(AppConfig("blog", hosts=["other.example.com"]))
    assert store.get_app("blog").hosts == ("blog.example.com",)


def test_missing_app_says_how_to_create_it(store: Store) -> None:
    with pytest.raises(NotFound, match=r"`bindrop create ghost --host HOST`"):
        store.get_app("ghost")


@pytest.mark.parametrize("name", ["", "Blog", "-blog", "blog-", "my_app", "a" * 41, "a.b"])
def test_invalid_app_name_is_refused_and_nothing_written(store: Store, name: str) -> None:
    with pytest.raises(InvalidInput, match="app name"):
        store.create_app(AppConfig(name))
    assert store.list_apps(include_system=True) == []


def test_hosts_are_lowercased_deduplicated_and_lose_a_trailing_slash(store: Store) -> None:
    app = store.create_app(
        AppConfig("blog", hosts=["Blog.Example.COM", "blog.example.com", "example.com/Api/"])
    )
    assert app.hosts == ("blog.example.com", "example.com/Api")


@pytest.mark.parametrize(
    "host",
    [
        "",
        "https://blog.example.com",
        "blog.example.com:8080",
        "*.example.com",
        "blog..example.com",
        "-blog.example.com",
        "blog_app.example.com",
        "a" * 64 + ".com",
        "example.com/../admin",
        "example.com/a//b",
        "example.com/a b",
        "example.com/a?x=1",
    ],
)
def test_invalid_host_is_refused_and_nothing_written(store: Store, host: str) -> None:
    with pytest.raises(InvalidInput, match=r"host|prefix"):
        store.create_app(AppConfig("blog", hosts=["ok.example.com", host]))
    assert store.list_apps() == []


def test_hosts_given_as_one_string_are_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match="list"):
        store.create_app(AppConfig("blog", hosts="blog.example.com"))


def test_host_already_owned_by_another_app_is_refused(store: Store) -> None:
    store.create_app(AppConfig("blog", hosts=["blog.example.com"]))
    with pytest.raises(Conflict, match="belongs to app 'blog'"):
        store.create_app(AppConfig("shop", hosts=["shop.example.com", "BLOG.example.com"]))
    with pytest.raises(NotFound):
        store.get_app("shop")
    assert store.create_app(AppConfig("shop", hosts=["shop.example.com"])).hosts == (
        "shop.example.com",
    )


def test_same_host_with_another_path_prefix_may_belong_to_another_app(store: Store) -> None:
    store.create_app(AppConfig("site", hosts=["example.com"]))
    store.create_app(AppConfig("api", hosts=["example.com/api"]))
    with pytest.raises(Conflict, match="belongs to app 'api'"):
        store.create_app(AppConfig("api2", hosts=["example.com/api/"]))


def test_update_that_takes_another_apps_host_changes_nothing(store: Store) -> None:
    store.create_app(AppConfig("blog", hosts=["blog.example.com"]))
    shop = store.create_app(AppConfig("shop", hosts=["shop.example.com"]))
    with pytest.raises(Conflict, match="belongs to app 'blog'"):
        store.update_app("shop", hosts=["blog.example.com"], memory_max=1024**3)
    assert store.get_app("shop") == shop
    assert store.get_app("shop").updated_at == shop.updated_at


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("health_path", "healthz"),
        ("health_path", "/health check"),
        ("health_timeout_s", 0),
        ("health_timeout_s", -1.0),
        ("health_timeout_s", math.nan),
        ("health_timeout_s", True),
        ("idle_timeout_s", math.inf),
        ("memory_max", 0),
        ("cpu_quota", -5),
        ("tasks_max", 1.5),
        ("on_demand", "yes"),
        ("no_overlap", 1),
        ("system", None),
        ("desired_state", "paused"),
        ("body_limit", 0),
        ("maintenance_message", ""),
        ("maintenance_message", "x" * 2001),
        ("maintenance_message", "Back \x1b[31msoon"),
        ("maintenance_message", "Back \u202esoon"),
    ],
)
def test_invalid_setting_is_refused_and_nothing_written(
    store: Store, field: str, value: object
) -> None:
    with pytest.raises(InvalidInput):
        store.create_app(AppConfig("blog", **{field: value}))  # type: ignore[arg-type]
    assert store.list_apps(include_system=True) == []

    before = store.create_app(AppConfig("blog"))
    with pytest.raises(InvalidInput):
        store.update_app("blog", **{field: value})
    after = store.get_app("blog")
    assert after == before and after.updated_at == before.updated_at


def test_update_changes_only_the_given_fields_and_bumps_updated_at(store: Store) -> None:
    before = store.create_app(AppConfig("blog", hosts=["blog.example.com"], memory_max=1024**2))
    after = store.update_app("blog", desired_state="stopped", health_path="/up")
    assert (after.desired_state, after.health_path) == ("stopped", "/up")
    assert after.hosts == before.hosts
    assert after.memory_max == before.memory_max
    assert after.created_at == before.created_at
    assert after.updated_at is not None and before.updated_at is not None
    assert after.updated_at > before.updated_at
    assert store.get_app("blog") == after


def test_update_that_changes_nothing_writes_nothing(store: Store) -> None:
    before = store.create_app(AppConfig("blog", memory_max=1024))
    after = store.update_app("blog", memory_max=1024)
    assert after.updated_at == before.updated_at


def test_update_can_clear_optional_settings(store: Store) -> None:
    store.create_app(AppConfig("blog", health_path="/up", memory_max=1024, hosts=["a.example"]))
    app = store.update_app("blog", health_path=None, memory_max=None, hosts=[])
    assert (app.health_path, app.memory_max, app.hosts) == (None, None, ())


@pytest.mark.parametrize("field", ["name", "created_at", "updated_at", "colour"])
def test_renaming_or_unknown_settings_are_refused(store: Store, field: str) -> None:
    store.create_app(AppConfig("blog"))
    with pytest.raises(InvalidInput, match=field):
        store.update_app("blog", **{field: "x"})


def test_updating_a_missing_app_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="bindrop create ghost"):
        store.update_app("ghost", memory_max=1024)


def test_current_release_must_be_a_release_of_the_app(store: Store) -> None:
    store.create_app(AppConfig("blog"))
    store.create_app(AppConfig("shop"))
    store.add_release("shop", SHA_A, 10, "binary", [], "alice")
    with pytest.raises(NotFound, match="no release 1"):
        store.update_app("blog", current_release=1)
    assert store.get_app("blog").current_release is None
    store.add_release("blog", SHA_A, 10, "binary", [], "alice")
    assert store.update_app("blog", current_release=1).current_release == 1


def test_a_new_app_cannot_name_a_current_release(store: Store) -> None:
    with pytest.raises(InvalidInput, match="current_release"):
        store.create_app(AppConfig("blog", current_release=1))


def test_list_apps_is_sorted_and_hides_system_apps_unless_asked(store: Store) -> None:
    store.create_app(AppConfig("zeta", hosts=["z.example.com"]))
    store.create_app(AppConfig("dashboard", system=True, hosts=["admin.example.com"]))
    store.create_app(AppConfig("alpha", hosts=["a.example.com", "b.example.com"]))
    assert [a.name for a in store.list_apps()] == ["alpha", "zeta"]
    everything = store.list_apps(include_system=True)
    assert [a.name for a in everything] == ["alpha", "dashboard", "zeta"]
    assert everything[0].hosts == ("a.example.com", "b.example.com")


def test_deleting_an_app_removes_its_env_releases_and_hosts(store: Store) -> None:
    store.create_app(AppConfig("blog", hosts=["blog.example.com"]))
    store.set_env("blog", {"GREETING": "hi"})
    store.add_release("blog", SHA_A, 10, "binary", [], "alice")
    store.update_app("blog", current_release=1)
    store.set_release_status("blog", 1, "live")

    store.delete_app("blog")

    with pytest.raises(NotFound):
        store.get_app("blog")
    assert store.referenced_blobs() == set()
    for table in ("hosts", "env", "releases"):
        assert store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    store.create_app(AppConfig("blog2", hosts=["blog.example.com"]))


def test_recreated_app_starts_with_no_env_or_releases(store: Store) -> None:
    store.create_app(AppConfig("blog"))
    store.set_env("blog", {"GREETING": "hi"})
    store.add_release("blog", SHA_A, 10, "binary", [], "alice")
    store.delete_app("blog")
    store.create_app(AppConfig("blog"))
    assert store.get_env("blog") == {}
    assert store.list_releases("blog") == []


def test_delete_returns_only_blobs_no_other_release_uses(store: Store) -> None:
    store.create_app(AppConfig("blog"))
    store.create_app(AppConfig("shop"))
    store.add_release("blog", SHA_A, 10, "binary", [], "alice")
    store.add_release("blog", SHA_B, 10, "binary", [], "alice")
    store.add_release("shop", SHA_A, 10, "binary", [], "alice")
    assert store.delete_app("blog") == {SHA_B}
    assert store.referenced_blobs() == {SHA_A}


def test_deleting_a_missing_app_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="ghost"):
        store.delete_app("ghost")


@pytest.mark.parametrize("interval", [0, -1, math.inf, "often"])
def test_a_liveness_interval_that_is_not_a_positive_number_is_refused(
    interval: object, tmp_path: Path
) -> None:
    with Store(tmp_path / "db.sqlite") as store, pytest.raises(InvalidInput, match="liveness"):
        store.create_app(AppConfig(name="web", liveness_interval_s=interval))  # type: ignore[arg-type]
    with Store(tmp_path / "db.sqlite") as store:
        assert store.list_apps() == []


def test_liveness_interval_round_trips(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        store.create_app(AppConfig(name="web", liveness_interval_s=2.5))
        assert store.get_app("web").liveness_interval_s == 2.5
        assert store.update_app("web", liveness_interval_s=None).liveness_interval_s is None
