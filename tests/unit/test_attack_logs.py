"""Which journal entries are an app's: by the unit journald says sent them, never by the
BINDROP_APP field alone (any process can send that). Pure."""

from __future__ import annotations

import pytest

from bindrop.hub.logs import unit_of_app


@pytest.mark.parametrize("unit", [
    "bindrop-app-blog-3.service", "bindrop-app-blog-3.1_worker_2.service",
    "bindrop-app-blog-3_release.service", "bindrop-app-blog-3_run.5f2a9c1e01ab.service",
    "bindrop-cron-blog.nightly.service",
])
def test_the_units_of_an_app_are_its_own(unit: str) -> None:
    assert unit_of_app(unit, "blog")


@pytest.mark.parametrize("unit", [
    "bindrop-app-blog-api-3.service", "bindrop-app-blogx-3.service",
    "bindrop-cron-blog-api.nightly.service", "bindrop-app-mallory-1_run.abcdef12.service",
    "bindrop-app-blog-3.scope", "bindrop.service", "", None, ["bindrop-app-blog-3.service"],
])
def test_another_app_s_unit_or_none_is_not(unit: object) -> None:
    assert not unit_of_app(unit, "blog")
