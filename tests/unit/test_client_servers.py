"""Which server the CLI talks to: URLs, saved names, and the file they are saved in."""

from __future__ import annotations

from pathlib import Path

import pytest

from bindrop.client.servers import (
    DEFAULT_SERVER,
    SavedServer,
    load_servers,
    parse_server,
    remove_server,
    resolve_server,
    save_server,
)
from bindrop.errors import InvalidInput, NotFound


@pytest.mark.parametrize(("url", "transport", "base"), [
    ("unix:/run/bindrop/control.sock", "unix", "http://localhost"),
    ("unix:///run/x.sock", "unix", "http://localhost"),
    ("http://127.0.0.1:7300", "http", "http://127.0.0.1:7300"),
    ("https://bindrop.example.com/", "http", "https://bindrop.example.com"),
    ("ssh://root@vps", "ssh", "http://localhost"),
])
def test_server_urls_parse(url: str, transport: str, base: str) -> None:
    endpoint = parse_server(url)
    assert (endpoint.transport, endpoint.base) == (transport, base)


@pytest.mark.parametrize("url", ["ftp://x", "http://", "prod:"])
def test_a_bad_server_url_lists_the_forms_that_work(url: str) -> None:
    with pytest.raises(InvalidInput, match="unix:/path"):
        parse_server(url)


def test_a_relative_socket_path_is_refused() -> None:
    with pytest.raises(InvalidInput, match="absolute path"):
        parse_server("unix:relative.sock")


def test_the_default_is_the_local_socket() -> None:
    endpoint, token = resolve_server(None, None, {"HOME": "/nonexistent"})
    assert endpoint.url == DEFAULT_SERVER and token is None


def test_a_saved_server_is_found_by_name_with_its_token(tmp_path: Path) -> None:
    environ = {"XDG_CONFIG_HOME": str(tmp_path)}
    path = save_server(environ, SavedServer("prod", "https://b.example.com", "bd_x"))
    assert path.stat().st_mode & 0o777 == 0o600
    endpoint, token = resolve_server("prod", None, environ)
    assert endpoint.base == "https://b.example.com" and token == "bd_x"
    assert resolve_server("prod", "bd_given", environ)[1] == "bd_given"
    remove_server(environ, "prod")
    assert load_servers(environ) == {}
    with pytest.raises(NotFound, match="bindrop server add prod"):
        resolve_server("prod", None, environ)
