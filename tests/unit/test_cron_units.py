"""Scheduled jobs: the timer + oneshot pair (pure), and the store's rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bindrop.errors import Conflict, InvalidInput, NotFound
from bindrop.settings import Settings
from bindrop.store import AppConfig, Store
from bindrop.units import AppSpec
from bindrop.units.app import ReleaseSpec, build_app_unit
from bindrop.units.cron import build_cron_units, cron_unit_names, validate_job_name
from bindrop.units.render import render_unit_file

APP = AppSpec("blog", {"MODE": "x"})


def units():  # type: ignore[no-untyped-def]
    return build_cron_units(APP, "3", "/srv/blob", ("prune", "--days", "30"), "nightly",
                            "daily", Settings())


def test_the_job_runs_like_the_app_but_once() -> None:
    service = units().service
    app_unit = build_app_unit(APP, ReleaseSpec("3", "/srv/blob", (), 20000), Settings())
    for name in ("User", "DynamicUser", "StateDirectory", "WorkingDirectory", "Slice",
                 "ProtectSystem", "PrivateTmp", "NoNewPrivileges"):
        assert service.get(name) == app_unit.get(name)
    assert service.get("Type") == "oneshot"
    assert "Restart" not in service.names
    assert service.get("ExecStart") == [("/srv/blob", ["/srv/blob", "prune", "--days", "30"],
                                         False)]
    env = service.get("Environment")
    assert isinstance(env, list) and "MODE=x" in env and "BINDROP_JOB=nightly" in env
    assert not any(e.startswith("PORT=") for e in env)


def test_the_timer_and_service_share_a_name() -> None:
    built = units()
    assert (built.timer.name, built.service.name) == ("bindrop-cron-blog.nightly.timer",
                                                       "bindrop-cron-blog.nightly.service")
    assert built.timer.get("TimersCalendar") == [("OnCalendar", "daily")]
    assert "[Timer]\nOnCalendar=daily" in render_unit_file(built.timer)


def test_names_of_different_app_job_pairs_never_collide() -> None:
    assert cron_unit_names("a-b", "c") != cron_unit_names("a", "b-c")


@pytest.mark.parametrize("name", ["", "Nightly", "-x", "x-", "a.b", "x" * 33, "a/b"])
def test_a_bad_job_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="job name"):
        validate_job_name(name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(Settings(root=tmp_path)) as s:
        s.create_app(AppConfig(name="blog", hosts=("blog.test",)))
        yield s


def test_jobs_are_stored_listed_and_removed(store: Store) -> None:
    job = store.add_cron_job("blog", "nightly", "daily", ["prune", "--all"])
    assert job.args == ("prune", "--all") and job.schedule == "daily"
    assert [j.name for j in store.list_cron_jobs("blog")] == ["nightly"]
    with pytest.raises(Conflict, match="already"):
        store.add_cron_job("blog", "nightly", "hourly", ["x"])
    assert store.remove_cron_job("blog", "nightly").name == "nightly"
    with pytest.raises(NotFound):
        store.remove_cron_job("blog", "nightly")


def test_a_job_needs_an_app_and_goes_with_it(store: Store) -> None:
    with pytest.raises(NotFound):
        store.add_cron_job("nope", "x", "daily", ["a"])
    store.add_cron_job("blog", "x", "daily", ["a"])
    store.delete_app("blog")
    assert store.list_cron_jobs() == []


def test_bad_args_are_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match="args"):
        store.add_cron_job("blog", "x", "daily", ["a\0b"])
    assert store.list_cron_jobs() == []
