"""``bindrop machine``: a disposable server with a real systemd, like ``podman machine``."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import click

from bindrop.machine import Machine, list_machines
from bindrop.machine.machine import remote_url
from bindrop.settings import DEFAULT_CONTROL_HOST, Settings

DEFAULT_NAME = "default"

_name_option = click.option(
    "--name", "-n", default=DEFAULT_NAME, show_default=True, envvar="BINDROP_MACHINE",
    help="Which machine. [env: BINDROP_MACHINE]",
)
_dir_option = click.option(
    "--machines-dir", type=click.Path(file_okay=False, path_type=Path),
    envvar="BINDROP_MACHINES_DIR",
    help="Where machines keep their disks (default: ~/.local/share/bindrop/machines). "
         "[env: BINDROP_MACHINES_DIR]",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _machine(name: str, machines_dir: Path | None) -> Machine:
    return Machine(name, machines_dir or Settings.from_env(os.environ).machines_dir)


@click.group()
def machine() -> None:
    """A private server with a real systemd as PID 1, anywhere.

    Boots systemd in its own namespaces with its own /run, /tmp, /etc/bindrop,
    /var/lib/bindrop and unit files, so nothing leaks onto the host.

    Example: bindrop machine up --bare && bindrop machine shell -- systemctl status
    """


@machine.command()
@_name_option
@_dir_option
@click.option("--http-port", type=click.IntRange(1, 65535), envvar="BINDROP_HTTP_PORT",
              help="Port the machine's proxy listens on for HTTP. [env: BINDROP_HTTP_PORT]")
@click.option("--https-port", type=click.IntRange(1, 65535), envvar="BINDROP_HTTPS_PORT",
              help="Port the machine's proxy listens on for HTTPS (default: none). "
                   "[env: BINDROP_HTTPS_PORT]")
@click.option("--bare", is_flag=True, help="Only systemd, D-Bus and journald; no bindrop services.")
@click.option("--net", metavar="ADDR[/PREFIX]", envvar="BINDROP_MACHINE_NET",
              help="A network namespace of its own with this address (e.g. 10.77.0.2/24) on a "
                   "host bridge; its proxy then listens on port 80 there. [env: "
                   "BINDROP_MACHINE_NET]")
@_json_option
def up(name: str, machines_dir: Path | None, http_port: int | None, https_port: int | None,
       bare: bool, net: str | None, as_json: bool) -> None:
    """Boot a machine and wait until its systemd is running.

    Running it again on a machine that is up changes nothing. After `down`, `up` is a reboot:
    transient units are gone, installed units and bindrop's data remain.

    Example: bindrop machine up --name demo --bare
    """
    m = _machine(name, machines_dir)
    state = m.up(http_port=http_port, bare=bare, net=net, https_port=https_port)
    if as_json:
        click.echo(json.dumps(asdict(state)))
        return
    click.echo(f"machine {name!r} is up (systemd pid {state.systemd_pid} on the host)")
    if not bare:
        click.echo("  bindrop runs inside: the hub (bindrop.service) and the proxy "
                   f"(bindrop-proxy.socket) on http://{state.address}:{state.http_port}"
                   + (f" and https://{state.address}:{state.https_port}"
                      if state.https_port else ""))
        if state.api_port and state.http_port and not state.net:
            click.echo("  the control API (with a token) through the proxy at "
                       f"{remote_url(DEFAULT_CONTROL_HOST, state.http_port)}")
        click.echo(f"  client:  eval \"$(bindrop machine env --name {name})\"")
    click.echo(f"  inside:  bindrop machine shell --name {name} -- systemctl status")
    click.echo(f"  stop:    bindrop machine down --name {name}")


@machine.command()
@_name_option
@_dir_option
@click.option("--purge", is_flag=True, help="Also delete the machine's disk.")
def down(name: str, machines_dir: Path | None, purge: bool) -> None:
    """Power a machine off; its disk stays unless --purge.

    Example: bindrop machine down --name demo --purge
    """
    m = _machine(name, machines_dir)
    stopped = m.down(purge=purge)
    what = "stopped" if stopped else "was not running"
    click.echo(f"machine {name!r} {what}" + (" and purged" if purge else ""))


@machine.command(context_settings={"ignore_unknown_options": True})
@_name_option
@_dir_option
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def shell(name: str, machines_dir: Path | None, command: tuple[str, ...]) -> None:
    """Run COMMAND inside a machine (a shell when none is given).

    systemctl, journalctl and systemd-run work there as on a server.

    Example: bindrop machine shell -- systemd-run --unit=x /bin/sleep 60
    """
    m = _machine(name, machines_dir)
    argv = list(command) or [os.environ.get("SHELL") or "/bin/bash"]
    nsenter = m.nsenter_argv(argv)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DBUS_", "BINDROP_")) and k != "XDG_RUNTIME_DIR"}
    sys.stdout.flush()
    os.execvpe(shutil.which("nsenter") or "nsenter", nsenter, env)


@machine.command()
@_name_option
@_dir_option
def env(name: str, machines_dir: Path | None) -> None:
    """Print shell `export` lines that point a client outside at the machine.

    BINDROP_SERVER is the hub's socket (root, no token), BINDROP_HTTP_URL the proxy, and
    BINDROP_REMOTE_URL the control API through the proxy, as from a laptop (needs --token).

    Example: eval "$(bindrop machine env --name demo)"
    """
    for line in _machine(name, machines_dir).env_lines():
        click.echo(line)


@machine.command()
@click.option("--name", "-n", envvar="BINDROP_MACHINE", help="Only this machine.")
@_dir_option
@_json_option
def status(name: str | None, machines_dir: Path | None, as_json: bool) -> None:
    """Show machines: running or not, systemd's state, pid.

    Example: bindrop machine status --json
    """
    base = machines_dir or Settings.from_env(os.environ).machines_dir
    machines = [Machine(name, base)] if name else list_machines(base)
    rows = [m.status() for m in machines]
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows]))
        return
    if not rows:
        click.echo("no machines; create one with `bindrop machine up`")
        return
    click.echo(f"{'NAME':<20} {'STATE':<10} {'SYSTEMD':<10} {'PID':<8} {'HTTP':<6} DIR")
    for r in rows:
        click.echo(f"{r.name:<20} {'running' if r.running else 'stopped':<10} "
                   f"{r.system_state or '-':<10} {r.systemd_pid or '-'!s:<8} "
                   f"{r.http_port or '-'!s:<6} {r.dir}")


machine.add_command(status, name="list")
