"""``bindrop install``: put bindrop's own units on this server, enable and start them."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import click

from bindrop.errors import BindropError
from bindrop.settings import Settings

#: Units bindrop installs, from deploy/ in the source tree.
UNITS = ("bindrop.service",)


def deploy_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "deploy"


def render_installed_unit(template: str, command: str) -> str:
    """A unit template from deploy/ with ``@BINDROP@`` replaced by how to run bindrop. Pure."""
    return template.replace("@BINDROP@", command)


def bindrop_command() -> str:
    """How systemd should run this very bindrop: its Python, so a virtualenv keeps working."""
    return f"{shlex.quote(sys.executable)} -m bindrop"


@click.command()
@click.option("--no-start", is_flag=True, help="Write and enable the units but start nothing.")
def install(no_start: bool) -> None:
    """Install bindrop's services on this server (as root): units, directories, then start.

    Writes bindrop.service into /etc/systemd/system, creates /etc/bindrop, /var/lib/bindrop
    and /var/backups/bindrop, enables the units and starts them. Running it again changes
    only what differs.

    Example: bindrop install
    """
    settings = Settings.from_env(os.environ)
    for directory, mode in ((settings.etc_dir, 0o755), (settings.state_dir, 0o755),
                            (settings.backups_dir, 0o700)):
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(mode)
    changed = []
    settings.unit_dir.mkdir(parents=True, exist_ok=True)
    for name in UNITS:
        template = (deploy_dir() / name).read_text()
        text = render_installed_unit(template, bindrop_command())
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
