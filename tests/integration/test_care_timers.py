"""The installed timer fires (a 3-second schedule here) and its oneshot makes a backup."""

from __future__ import annotations

import sys

import pytest

from bindrop.api import ApiServer
from bindrop.care.local import LocalBackups
from bindrop.hub.hub import Hub
from bindrop.machine import Machine
from bindrop.serve.install import deploy_dir, render_installed_unit
from bindrop.settings import Settings

from .carekit import deploy_writer, wait_for

pytestmark = pytest.mark.integration

UNITS = ("bindrop-backup.service", "bindrop-backup.timer")


async def test_the_backup_timer_fires_and_its_service_makes_a_backup(
    machine: Machine, settings: Settings, hub: Hub, api: ApiServer
) -> None:
    await deploy_writer(hub, "timed", "serve", "--until", "10")
    unit_dir = machine.layout.private_dir("/etc/systemd/system")
    command = f"{sys.executable} -m bindrop"
    for name in UNITS:
        text = render_installed_unit((deploy_dir() / name).read_text(), command,
                                     backup_schedule="*:*:0/3", backup_delay="0",
                                     timer_accuracy="1s")
        (unit_dir / name).write_text(text)
    # The test hub's paths, as the service inside the machine sees them.
    dropin = unit_dir / "bindrop-backup.service.d"
    dropin.mkdir(exist_ok=True)
    (dropin / "test.conf").write_text(
        "[Service]\n"
        f"Environment=BINDROP_ROOT={settings.root}\n"
        "Environment=BINDROP_APPS_DATA=/var/lib/private/bindrop/apps\n"
        f"Environment=BINDROP_SERVER=unix:{api.socket_path}\n")
    machine.exec("systemctl", "daemon-reload")
    try:
        machine.exec("systemctl", "start", "bindrop-backup.timer")
        timers = machine.exec("systemctl", "list-timers", "--all", "--no-pager").stdout
        assert "bindrop-backup.timer" in timers
        local = LocalBackups(settings.backups_dir)
        await wait_for(lambda: bool(local.list()), timeout=40)
        manifest = local.list()[0]
        assert manifest.part_for("timed") is not None
        await wait_for(lambda: any(e.kind == "backup_succeeded"
                                   for e in hub.store.list_events()), timeout=20)
        # The service prints the backup's id once the hub answers it: after the event.
        await wait_for(lambda: f"backup {manifest.id}" in machine.exec(
            "journalctl", "-u", "bindrop-backup.service", "--no-pager").stdout, timeout=20)
    finally:
        machine.exec("systemctl", "stop", "bindrop-backup.timer", "bindrop-backup.service",
                     check=False)
        for name in UNITS:
            (unit_dir / name).unlink()
        (dropin / "test.conf").unlink()
        dropin.rmdir()
        machine.exec("systemctl", "daemon-reload")
        machine.exec("systemctl", "reset-failed", *UNITS, check=False)
    left = machine.exec("systemctl", "list-units", "--all", "--plain", "--no-legend",
                        *UNITS, check=False).stdout
    assert left.strip() == "", left
