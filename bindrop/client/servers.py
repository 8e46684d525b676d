"""Which server a client talks to: a URL, or the name of one saved in the user's config.

    unix:/run/bindrop/control.sock     the local socket (root; no token)
    http://127.0.0.1:7300              TCP, with a token
    https://bindrop.example.com        the same through the proxy, with a token
    prod                               a name saved with `bindrop server add prod URL`

Named servers live in ``$XDG_CONFIG_HOME/bindrop/servers.json`` (``~/.config/…``), mode 0600
since an entry may hold a token. Everything reads the environment it is given, never
``os.environ`` behind the caller's back.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from bindrop.errors import InvalidInput, NotFound

DEFAULT_SERVER = "unix:/run/bindrop/control.sock"
#: The host at which the proxy serves the dashboard (a system app); "off" for none. A server's
#: settings (bindrop.settings) take their default from here.
DEFAULT_DASHBOARD_HOST = "dashboard.localhost"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")

Transport = Literal["unix", "http", "ssh"]


@dataclass(frozen=True)
class Endpoint:
    """A parsed server URL. ``base`` is the HTTP base URL requests are made against."""

    url: str
    transport: Transport
    base: str
    socket_path: str | None = None
    ssh_user: str | None = None
    ssh_host: str | None = None
    ssh_port: int | None = None


def parse_server(url: str) -> Endpoint:
    """Parse a server URL. Pure; ``InvalidInput`` saying which forms exist."""
    if url.startswith("unix:"):
        path = url[len("unix:"):]
        if path.startswith("//"):
            path = path[2:]
        if not path.startswith("/"):
            raise InvalidInput(f"server {url!r} is not valid: a unix socket needs an absolute "
                               "path, e.g. unix:/run/bindrop/control.sock")
        return Endpoint(url, "unix", "http://localhost", socket_path=path)
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.hostname:
        return Endpoint(url, "http", f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}")
    if parts.scheme == "ssh" and parts.hostname:
        try:
            port = parts.port
        except ValueError:
            port = -1
        if port == -1 or (parts.path and not parts.path.startswith("/")):
            raise InvalidInput(f"server {url!r} is not valid: use ssh://user@host[:port], "
                               "optionally followed by the control socket's path")
        # The path, if any, is where the control socket is on the server.
        return Endpoint(url, "ssh", "http://localhost", socket_path=parts.path or None,
                        ssh_user=parts.username, ssh_host=parts.hostname, ssh_port=port)
    raise InvalidInput(f"server {url!r} is not valid: use unix:/path/to/control.sock, "
                       "http://host:port, https://host, ssh://user@host, or the name of a "
                       "server saved with `bindrop server add NAME URL`")


def config_path(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "/root")) / ".config")
    return Path(base) / "bindrop" / "servers.json"


@dataclass(frozen=True)
class SavedServer:
    name: str
    url: str
    token: str | None = None


def load_servers(environ: Mapping[str, str]) -> dict[str, SavedServer]:
    path = config_path(environ)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise InvalidInput(f"{path} is not valid JSON ({exc}); fix or delete it") from None
    if not isinstance(raw, dict):
        raise InvalidInput(f"{path} must hold a JSON object of servers; fix or delete it")
    servers = {}
    for name, entry in raw.items():
        if isinstance(entry, dict) and isinstance(entry.get("url"), str):
            token = entry.get("token")
            servers[name] = SavedServer(name, entry["url"],
                                        token if isinstance(token, str) else None)
    return servers


def save_server(environ: Mapping[str, str], server: SavedServer) -> Path:
    """Add or replace a named server; the file is written whole and private (0600)."""
    if not NAME.fullmatch(server.name):
        raise InvalidInput(f"server name {server.name!r} is not valid: use letters, digits, "
                           "'.', '_' and '-'")
    parse_server(server.url)
    servers = load_servers(environ)
    servers[server.name] = server
    return _write(environ, servers)


def remove_server(environ: Mapping[str, str], name: str) -> Path:
    servers = load_servers(environ)
    if servers.pop(name, None) is None:
        raise NotFound(f"no saved server named {name!r}; see `bindrop server list`")
    return _write(environ, servers)


def _write(environ: Mapping[str, str], servers: Mapping[str, SavedServer]) -> Path:
    path = config_path(environ)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {s.name: {"url": s.url, **({"token": s.token} if s.token else {})}
            for s in servers.values()}
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(temp, path)
    return path


def resolve_server(server: str | None, token: str | None,
                   environ: Mapping[str, str]) -> tuple[Endpoint, str | None]:
    """The endpoint and token to use: ``server`` is a URL or a saved name (default: the
    local socket). An explicit ``token`` wins over a saved one."""
    value = server or DEFAULT_SERVER
    if ":" not in value:
        saved = load_servers(environ).get(value)
        if saved is None:
            raise NotFound(f"no saved server named {value!r}: add it with "
                           f"`bindrop server add {value} URL`, or give a URL")
        return parse_server(saved.url), token or saved.token
    return parse_server(value), token
