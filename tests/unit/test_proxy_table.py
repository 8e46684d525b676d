"""The proxy's route lookup: host and path prefix to app."""

from __future__ import annotations

import pytest

from bindrop.client.proxywire import AppRoute, RouteTable
from bindrop.proxy.table import build_lookup, match_route

TABLE = RouteTable(3, (
    AppRoute("site", ("example.com", "www.example.com"), "running"),
    AppRoute("api", ("example.com/api", "example.com/api/v2/admin"), "running"),
    AppRoute("v2", ("example.com/api/v2",), "running"),
))


@pytest.mark.parametrize(("host", "path", "app"), [
    ("example.com", "/", "site"),
    ("EXAMPLE.com:80", "/about?x=1", "site"),
    ("example.com", "/api", "api"),
    ("example.com", "/api?x=/v2", "api"),
    ("example.com", "/api/things", "api"),
    ("example.com", "/apix", "site"),
    ("example.com", "/api/v2", "v2"),
    ("example.com", "/api/v2/admin/users", "api"),
    ("example.com", "/api/v20", "api"),
    ("www.example.com", "/api", "site"),
    ("other.com", "/", None),
    (None, "/", None),
])
def test_the_longest_whole_segment_prefix_wins(host: str | None, path: str,
                                               app: str | None) -> None:
    found = match_route(build_lookup(TABLE), host, path)
    assert (found.app if found else None) == app


def test_a_host_with_only_prefixes_answers_nothing_outside_them() -> None:
    lookup = build_lookup(RouteTable(1, (AppRoute("api", ("a.test/api",), "running"),)))
    assert match_route(lookup, "a.test", "/") is None
    assert match_route(lookup, "a.test", "/api/x") is not None


def test_a_host_listed_twice_keeps_its_first_app() -> None:
    lookup = build_lookup(RouteTable(1, (AppRoute("one", ("a.test",), "running"),
                                         AppRoute("two", ("a.test",), "running"))))
    found = match_route(lookup, "a.test", "/")
    assert found is not None and found.app == "one"


def test_the_lookup_carries_its_table_version() -> None:
    assert build_lookup(TABLE).version == 3
