"""``bindrop install``: put bindrop's own units on this server, enable and start them."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import click

from bindrop.errors import BindropError, InvalidInput
from bindrop.settings import (
    DEFAULT_API_PORT,
    DEFAULT_CONTROL_HOST,
    Settings,
    parse_api_port,
    parse_control_host,
)

#: Units bindrop installs, from deploy/ in the source tree, in start order.
UNITS = ("bindrop.service", "bindrop-proxy.socket", "bindrop-proxy.service")
DEFAULT_HTTP_PORT = 80


def deploy_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "deploy"


def render_installed_unit(template: str, command: str, http_port: int = DEFAULT_HTTP_PORT,
                          api_port: int | None = DEFAULT_API_PORT,
                          control_host: str = DEFAULT_CONTROL_HOST) -> str:
    """A unit template from deploy/ with ``@BINDROP@`` replaced by how to run bindrop, the
    proxy's ``ListenStream=80`` by ``http_port``, ``@API_PORT@`` by ``api_port`` ("off" for
    None) and ``@CONTROL_HOST@`` by ``control_host``. Pure."""
    text = (template.replace("@BINDROP@", command)
            .replace("@API_PORT@", str(api_port) if api_port else "off")
            .replace("@CONTROL_HOST@", control_host))
    return text.replace("\nListenStream=80\n", f"\nListenStream={http_port}\n")


def _api_port(text: str) -> int | None:
    try:
        return parse_api_port(text)
    except InvalidInput as exc:
        raise click.BadParameter(exc.message) from None


def bindrop_command() -> str:
    """How systemd should run this very bindrop: its Python, so a virtualenv keeps working."""
    return f"{shlex.quote(sys.executable)} -m bindrop"


@click.command()
@click.option("--no-start", is_flag=True, help="Write and enable the units but start nothing.")
@click.option("--http-port", type=click.IntRange(1, 65535), default=DEFAULT_HTTP_PORT,
              show_default=True, envvar="BINDROP_HTTP_PORT",
              help="Port the proxy listens on for HTTP. [env: BINDROP_HTTP_PORT]")
@click.option("--api-port", default=str(DEFAULT_API_PORT), show_default=True,
              envvar="BINDROP_API_PORT", callback=lambda _ctx, _param, value: _api_port(value),
              help="Port of the control API on 127.0.0.1 (tokens needed), which the proxy "
                   "exposes at --control-host; 'off' for none. [env: BINDROP_API_PORT]")
@click.option("--control-host", default=DEFAULT_CONTROL_HOST, show_default=True,
              envvar="BINDROP_CONTROL_HOST",
              help="Host at which the proxy serves the control API; no app may claim it. "
                   "[env: BINDROP_CONTROL_HOST]")
def install(no_start: bool, http_port: int, api_port: int | None, control_host: str) -> None:
    """Install bindrop's services on this server (as root): units, directories, then start.

    Writes bindrop.service (the hub, with the control API on 127.0.0.1:--api-port) and
    bindrop-proxy.socket + .service (the proxy, on --http-port, which also routes
    --control-host to the control API) into /etc/systemd/system, creates /etc/bindrop,
    /var/lib/bindrop and /var/backups/bindrop, enables the units and starts them. Running
    it again changes only what differs.

    Example: bindrop install --http-port 80 --control-host bindrop.example.com
    """
    settings = Settings.from_env(os.environ)
    control_host = parse_control_host(control_host)
    for directory, mode in ((settings.etc_dir, 0o755), (settings.state_dir, 0o755),
                            (settings.backups_dir, 0o700)):
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(mode)
    changed = []
    settings.unit_dir.mkdir(parents=True, exist_ok=True)
    for name in UNITS:
        template = (deploy_dir() / name).read_text()
        text = render_installed_unit(template, bindrop_command(), http_port, api_port,
                                     control_host)
        target = settings.unit_dir / name
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            changed.append(name)
    if changed:
        _systemctl("daemon-reload")
    _systemctl("enable", *UNITS)
    if not no_start:
        # restart only what changed, so re-running install on a running server is a no-op
        for name in UNITS:
            _systemctl("restart" if name in changed else "start", name)
    click.echo(f"installed {', '.join(UNITS)}" + (f" (updated: {', '.join(changed)})"
                                                   if changed else " (unchanged)"))


def _systemctl(*args: str) -> None:
    proc = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BindropError(f"systemctl {' '.join(args)} failed: {proc.stderr.strip()}; "
                           "see `journalctl -u bindrop` for why")
