"""HTTPS rules of the proxy: which certificate answers an SNI name, where a plain-HTTP request
for an https-only app is sent, which systemd sockets are for HTTPS, and the app setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bindrop.client.proxywire import RouteTable, parse_table, render_table
from bindrop.hub.routetable import ControlRoute, build_route_table
from bindrop.proxy.certs import host_for_file_stem, pick_certificate
from bindrop.proxy.headers import build_https_location
from bindrop.proxy.listen import parse_listen_fdnames
from bindrop.settings import Settings
from bindrop.store import AppConfig, Store

NAMES = ("a.example.com", "*.example.com", "other.test")


@pytest.mark.parametrize(("server_name", "default", "picked"), [
    ("a.example.com", None, "a.example.com"),           # exact beats the wildcard
    ("A.Example.COM.", None, "a.example.com"),          # case and a trailing dot do not matter
    ("b.example.com", None, "*.example.com"),           # wildcard, one level
    ("x.b.example.com", None, None),                    # a wildcard covers one level only
    ("example.com", None, None),                        # nor the bare parent
    ("other.test", "a.example.com", "other.test"),
    ("unknown.test", "a.example.com", "a.example.com"),  # else the default
    (None, "other.test", "other.test"),                 # a client that sent no name
    (None, None, None),                                 # no default: the handshake fails
])
def test_certificate_for_a_server_name_is_exact_then_wildcard_then_default(
        server_name: str | None, default: str | None, picked: str | None) -> None:
    assert pick_certificate(NAMES, server_name, default) == picked


@pytest.mark.parametrize(("stem", "host"), [
    ("_wildcard.example.com", "*.example.com"),
    ("Blog.Example.com", "blog.example.com"),
])
def test_certificate_file_names_map_to_hostnames(stem: str, host: str) -> None:
    assert host_for_file_stem(stem) == host


@pytest.mark.parametrize(("host", "raw_path", "port", "location"), [
    ("blog.test", "/", 443, "https://blog.test/"),
    ("blog.test:80", "/a%2Fb/c?x=1&y=%20", 443, "https://blog.test/a%2Fb/c?x=1&y=%20"),
    ("Blog.Test.", "/p", 8443, "https://blog.test:8443/p"),
    ("[::1]:8080", "/q?", 443, "https://[::1]/q?"),
])
def test_https_redirect_keeps_host_and_raw_path(host: str, raw_path: str, port: int,
                                                location: str) -> None:
    assert build_https_location(host, raw_path, port) == location


def test_systemd_sockets_are_told_apart_by_their_names() -> None:
    environ = {"LISTEN_PID": "7", "LISTEN_FDS": "3", "LISTEN_FDNAMES": "http:https"}
    assert parse_listen_fdnames(environ, 7) == [(3, "http"), (4, "https"), (5, "unknown")]
    assert parse_listen_fdnames({"LISTEN_PID": "7", "LISTEN_FDS": "1"}, 7) == [(3, "unknown")]
    assert parse_listen_fdnames(environ, 8) == []


def test_https_redirect_is_stored_and_reaches_the_proxy_but_not_for_the_control_host(
        tmp_path: Path) -> None:
    with Store.open(Settings(root=tmp_path)) as store:
        store.create_app(AppConfig("blog", hosts=["blog.test"]))
        assert store.get_app("blog").https_redirect is False
        updated = store.update_app("blog", https_redirect=True)
        assert updated.https_redirect is True and store.get_app("blog") == updated
        entries, _ = build_route_table([updated], {}, ControlRoute("bindrop.test", 9, 1000))
    table = parse_table(render_table(RouteTable(1, tuple(entries))))
    by_app = {a.app: a for a in table.apps}
    assert by_app["blog"].https_redirect is True
    assert by_app["bindrop:control"].https_redirect is False
    assert parse_table(render_table(table)) == table
