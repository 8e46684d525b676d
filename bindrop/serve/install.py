"""``bindrop install``: put bindrop's own units on this server, enable and start them."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import click

import bindrop
from bindrop.domain.processes import DEFAULT_MAX_INSTANCES
from bindrop.errors import BindropError, InvalidInput
from bindrop.proxy.trusted import parse_trusted_proxies
from bindrop.settings import (
    DEFAULT_API_PORT,
    DEFAULT_CONTROL_HOST,
    DEFAULT_DASHBOARD_HOST,
    DEFAULT_RELEASE_TIMEOUT_S,
    Settings,
    parse_api_port,
    parse_control_host,
    parse_dashboard_host,
    parse_span,
)
from bindrop.systemd.calendar import parse_calendar
from bindrop.version import version_text

#: Units bindrop installs, from the package's deploy/ folder, in start order.
UNITS = ("bindrop.service", "bindrop-backup.service", "bindrop-backup.timer",
         "bindrop-disk.service", "bindrop-disk.timer", "bindrop-tls.service",
         "bindrop-tls.timer", "bindrop-proxy.socket", "bindrop-proxy-https.socket",
         "bindrop-proxy.service")
#: Oneshots their timers start: written, never enabled or started by install itself.
TIMER_SERVICES = ("bindrop-backup.service", "bindrop-disk.service", "bindrop-tls.service")
DEFAULT_BACKUP_SCHEDULE = "daily"
BACKUP_DELAY = "1h"
DISK_INTERVAL = "15min"
TIMER_ACCURACY = "1min"
HTTPS_SOCKET = "bindrop-proxy-https.socket"
DEFAULT_HTTP_PORT = 80
DEFAULT_HTTPS_PORT = 443
#: Where install puts ``bindrop`` when a non-interactive SSH session would not find it
#: (``ssh://`` servers run ``bindrop api-stdio`` there); bootstrap.sh links the same path.
PATH_LINK = "/usr/local/bin/bindrop"
#: The PATH of a non-interactive SSH session (sshd's default on Debian, less /usr/games).
SSH_PATH = ("/usr/local/bin", "/usr/bin", "/bin")


def put_on_path(settings: Settings, script: Path) -> Path | None:
    """Link ``script`` (this bindrop's console script) at ``PATH_LINK`` when no ``bindrop``
    is on a non-interactive SSH session's PATH; the link made, or None. A link left to a
    bindrop that is gone (its virtualenv removed) is replaced; nothing else is touched."""
    if not script.is_file():
        return None
    for directory in SSH_PATH:
        if (settings.root / directory.lstrip("/") / "bindrop").exists():  # a dead link: no
            return None
    link = settings.root / PATH_LINK.lstrip("/")
    if link.is_symlink():
        link.unlink()
    elif link.exists() or link.parent.is_file():
        return None
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(script)
    return link


def installed_units(https_port: int | None) -> tuple[str, ...]:
    """The units to install, in start order: the HTTPS socket only when it has a port."""
    return tuple(u for u in UNITS if https_port is not None or u != HTTPS_SOCKET)


def deploy_dir() -> Traversable:
    """The unit templates: package data (``bindrop/deploy/``) of any install."""
    return resources.files("bindrop") / "deploy"


def render_installed_unit(template: str, command: str, http_port: int = DEFAULT_HTTP_PORT,
                          api_port: int | None = DEFAULT_API_PORT,
                          control_host: str = DEFAULT_CONTROL_HOST,
                          https_port: int | None = DEFAULT_HTTPS_PORT, *,
                          backup_schedule: str = DEFAULT_BACKUP_SCHEDULE,
                          backup_delay: str = BACKUP_DELAY, disk_interval: str = DISK_INTERVAL,
                          timer_accuracy: str = TIMER_ACCURACY,
                          max_instances: int = DEFAULT_MAX_INSTANCES,
                          release_timeout_s: float = DEFAULT_RELEASE_TIMEOUT_S,
                          trusted_proxies: str = "") -> str:
    """A unit template from deploy/ with ``@BINDROP@`` replaced by how to run bindrop, the
    proxy's ``ListenStream=80`` by ``http_port`` and ``=443`` by ``https_port``,
    ``@PROXY_SOCKETS@`` by the proxy's sockets, ``@API_PORT@`` by ``api_port`` ("off" for
    None) and ``@CONTROL_HOST@`` by ``control_host``; the timers' ``@BACKUP_SCHEDULE@``,
    ``@BACKUP_DELAY@``, ``@DISK_INTERVAL@``, ``@TIMER_ACCURACY@`` and the hub's
    ``@MAX_INSTANCES@`` and ``@RELEASE_TIMEOUT@`` (seconds) likewise, and the proxy's
    ``@TRUSTED_PROXIES@`` by ``trusted_proxies`` (CIDR,…; "" for none). Pure."""
    sockets = " ".join(u for u in installed_units(https_port) if u.endswith(".socket"))
    text = (template.replace("@BINDROP@", command)
            .replace("@API_PORT@", str(api_port) if api_port else "off")
            .replace("@CONTROL_HOST@", control_host)
            .replace("@PROXY_SOCKETS@", sockets)
            .replace("@BACKUP_SCHEDULE@", backup_schedule)
            .replace("@BACKUP_DELAY@", backup_delay)
            .replace("@DISK_INTERVAL@", disk_interval)
            .replace("@TIMER_ACCURACY@", timer_accuracy)
            .replace("@MAX_INSTANCES@", str(max_instances))
            .replace("@RELEASE_TIMEOUT@", f"{release_timeout_s:g}")
            .replace("@TRUSTED_PROXIES@", trusted_proxies))
    text = text.replace("\nListenStream=80\n", f"\nListenStream={http_port}\n")
    return text.replace("\nListenStream=443\n", f"\nListenStream={https_port}\n")


def _https_port(text: str) -> int | None:
    value = text.strip().lower()
    if value in ("off", "none", ""):
        return None
    if not value.isdigit() or not 0 < int(value) <= 65535:
        raise click.BadParameter(f"use a port number (1-65535) or 'off', not {text!r}")
    return int(value)


def _release_timeout(text: str) -> float:
    try:
        return parse_span("--release-timeout", text, DEFAULT_RELEASE_TIMEOUT_S)
    except InvalidInput as exc:
        raise click.BadParameter(exc.message) from None


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
@click.option("--https-port", default=str(DEFAULT_HTTPS_PORT), show_default=True,
              envvar="BINDROP_HTTPS_PORT", callback=lambda _ctx, _param, v: _https_port(v),
              help="Port the proxy terminates HTTPS on (certificates in /etc/bindrop/tls/); "
                   "'off' for none. [env: BINDROP_HTTPS_PORT]")
@click.option("--api-port", default=str(DEFAULT_API_PORT), show_default=True,
              envvar="BINDROP_API_PORT", callback=lambda _ctx, _param, value: _api_port(value),
              help="Port of the control API on 127.0.0.1 (tokens needed), which the proxy "
                   "exposes at --control-host; 'off' for none. [env: BINDROP_API_PORT]")
@click.option("--control-host", default=DEFAULT_CONTROL_HOST, show_default=True,
              envvar="BINDROP_CONTROL_HOST",
              help="Host at which the proxy serves the control API; no app may claim it. "
                   "[env: BINDROP_CONTROL_HOST]")
@click.option("--dashboard-host", default=DEFAULT_DASHBOARD_HOST, show_default=True,
              envvar="BINDROP_DASHBOARD_HOST",
              callback=lambda _ctx, _param, value: _dashboard_host(value),
              help="Host at which the proxy serves the dashboard (a system app; needs "
                   "--api-port); 'off' for none. [env: BINDROP_DASHBOARD_HOST]")
@click.option("--backup-schedule", default=DEFAULT_BACKUP_SCHEDULE, show_default=True,
              envvar="BINDROP_BACKUP_SCHEDULE",
              help="When bindrop-backup.timer runs the backup (a systemd calendar spec, "
                   "e.g. '*-*-* 03:00'). [env: BINDROP_BACKUP_SCHEDULE]")
@click.option("--max-instances", type=click.IntRange(1, 10_000),
              default=DEFAULT_MAX_INSTANCES, show_default=True, envvar="BINDROP_MAX_INSTANCES",
              help="The most instances `bindrop scale` gives one process type of an app. "
                   "[env: BINDROP_MAX_INSTANCES]")
@click.option("--release-timeout", default=f"{DEFAULT_RELEASE_TIMEOUT_S:g}s", show_default=True,
              envvar="BINDROP_RELEASE_TIMEOUT", callback=lambda _ctx, _param, value:
              _release_timeout(value),
              help="Longest a release command (Procfile `release:`) may run before it is "
                   "stopped and its deploy fails, e.g. 600, 30min, 2h. "
                   "[env: BINDROP_RELEASE_TIMEOUT]")
@click.option("--trusted-proxies", default="", envvar="BINDROP_TRUSTED_PROXIES",
              callback=lambda _ctx, _param, value: _trusted_proxies(value),
              help="Load balancers or CDNs in front of this server (CIDR,…): only from those "
                   "does the proxy keep an incoming X-Forwarded-For / Forwarded chain. "
                   "Default: none, the proxy is the edge. [env: BINDROP_TRUSTED_PROXIES]")
def install(no_start: bool, http_port: int, https_port: int | None, api_port: int | None,
            control_host: str, dashboard_host: str | None, backup_schedule: str,
            max_instances: int, release_timeout: float, trusted_proxies: str) -> None:
    """Install bindrop's services on this server (as root): units, directories, then start.

    Writes bindrop.service (the hub, with the control API on 127.0.0.1:--api-port) and
    bindrop-proxy.socket + .service (the proxy, on --http-port, which also routes
    --control-host to the control API), and the timers bindrop-backup.timer (daily backup),
    bindrop-disk.timer (disk check every 15 min) and bindrop-tls.timer (certificate
    renewal twice a day) into /etc/systemd/system, creates
    /etc/bindrop, /var/lib/bindrop and /var/backups/bindrop, enables the units and starts
    them. Running
    it again changes only what differs.

    Example: bindrop install --http-port 80 --control-host bindrop.example.com
    """
    settings = Settings.from_env(os.environ)
    control_host = parse_control_host(control_host)
    try:
        backup_schedule = parse_calendar(backup_schedule)
    except InvalidInput as exc:
        raise click.BadParameter(exc.message, param_hint="--backup-schedule") from None
    for directory, mode in ((settings.etc_dir, 0o755), (settings.state_dir, 0o755),
                            (settings.backups_dir, 0o700)):
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(mode)
    changed = []
    units = installed_units(https_port)
    settings.unit_dir.mkdir(parents=True, exist_ok=True)
    dropped = settings.unit_dir / HTTPS_SOCKET
    if HTTPS_SOCKET not in units and dropped.exists():  # --https-port off after it was on
        _systemctl("disable", "--now", HTTPS_SOCKET)
        dropped.unlink()
        changed.append(HTTPS_SOCKET)
    for name in units:
        template = (deploy_dir() / name).read_text()
        text = render_installed_unit(template, bindrop_command(), http_port, api_port,
                                     control_host, https_port,
                                     backup_schedule=backup_schedule,
                                     max_instances=max_instances,
                                     release_timeout_s=release_timeout,
                                     trusted_proxies=trusted_proxies)
        target = settings.unit_dir / name
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            changed.append(name)
    if changed:
        _systemctl("daemon-reload")
    # The timers' oneshots run only when their timer says so, never at install.
    started = [u for u in units if u not in TIMER_SERVICES]
    _systemctl("enable", *started)
    if not no_start:
        # Restart only what changed, so re-running install on a running server is a no-op.
        # A changed socket is restarted too: that is how its port changes.
        for name in started:
            _systemctl("restart" if name in changed else "start", name)
    click.echo(f"installed {', '.join(units)}" + (f" (updated: {', '.join(changed)})"
                                                   if changed else " (unchanged)"))
    click.echo(f"the units run {bindrop_command()}: bindrop {version_text()} from "
               f"{Path(bindrop.__file__).resolve().parent}")
    try:
        linked = put_on_path(settings, Path(sys.executable).parent / "bindrop")
    except OSError as exc:  # a read-only /usr/local, say: the server runs without it
        click.echo(f"note: could not link {PATH_LINK} ({exc.strerror or exc}); ssh:// then "
                   "needs BINDROP_REMOTE_COMMAND")
    else:
        if linked is not None:
            click.echo(f"linked {linked} -> {linked.readlink()} (so ssh:// finds bindrop)")
    if not no_start and dashboard_host is not None:
        if api_port is None:
            click.echo("dashboard: skipped (it needs the TCP control API: --api-port)")
        else:
            click.echo(_set_up_dashboard(settings, dashboard_host))


def _trusted_proxies(text: str) -> str:
    """The networks as ``CIDR,CIDR`` (validated), "" for none."""
    try:
        return ",".join(str(net) for net in parse_trusted_proxies(text))
    except InvalidInput as exc:
        raise click.BadParameter(exc.message) from None


def _dashboard_host(text: str) -> str | None:
    try:
        return parse_dashboard_host(text)
    except InvalidInput as exc:
        raise click.BadParameter(exc.message) from None


def _set_up_dashboard(settings: Settings, host: str) -> str:
    """Ask the hub just started (over its socket) to run the dashboard at ``host``."""
    from bindrop.client.client import Client

    async def setup() -> dict[str, object]:
        async with Client(f"unix:{settings.control_socket}") as client:
            done: dict[str, object] = await client.setup_dashboard(host)
            return done

    done = asyncio.run(setup())
    changed = done["changed"]
    what = ", ".join(map(str, changed)) if isinstance(changed, list) and changed else "unchanged"
    return f"dashboard at {host}: {what}"


def _systemctl(*args: str) -> None:
    proc = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BindropError(f"systemctl {' '.join(args)} failed: {proc.stderr.strip()}; "
                           "see `journalctl -u bindrop` for why")
