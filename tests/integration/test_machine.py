"""`bindrop machine` against the real thing: boot, run units, reboot, two side by side."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bindrop.machine import Machine

pytestmark = pytest.mark.integration

HOST_DIRS = ("/etc/bindrop", "/var/lib/bindrop", "/var/backups/bindrop")


@pytest.fixture
def spare(tmp_path: Path) -> Iterator[Machine]:
    """A second machine of a test's own, for reboots and side-by-side checks."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    m = Machine(f"spare-{uuid.uuid4().hex[:8]}", tmp_path / "machines")
    yield m
    m.down(purge=True)


def _running(pid: int) -> bool:
    """Alive and not a zombie (the host's init reaps orphans in its own time)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_transient_unit_runs_and_logs_to_the_machines_journal(machine: Machine) -> None:
    unit = f"hello-{uuid.uuid4().hex[:6]}"
    machine.exec("systemd-run", f"--unit={unit}", "--wait", "--quiet",
                 "/bin/sh", "-c", "echo hello from inside")
    # journald stores the line a little after the unit ended: wait for it, briefly
    for _ in range(100):
        logs = machine.exec("journalctl", "-u", unit, "-o", "cat", "--no-pager").stdout
        if "hello from inside" in logs:
            break
        time.sleep(0.2)
    assert "hello from inside" in logs


def test_machine_is_its_own_host(machine: Machine) -> None:
    assert machine.exec("hostname").stdout.strip() == machine.name
    assert machine.exec("cat", "/proc/1/comm").stdout.strip() == "systemd"
    marker = Path("/tmp") / f"host-marker-{uuid.uuid4().hex}"
    marker.touch()
    try:
        assert machine.exec("test", "-e", str(marker), check=False).returncode == 1
    finally:
        marker.unlink()


def test_writes_inside_never_reach_the_host(machine: Machine) -> None:
    before = {d: Path(d).exists() for d in HOST_DIRS}
    machine.exec("sh", "-c", "echo x > /var/lib/bindrop/probe && echo y > /etc/bindrop/probe "
                 "&& echo z > /var/log/probe-from-machine")
    assert not Path("/var/log/probe-from-machine").exists()
    assert {d: Path(d).exists() for d in HOST_DIRS} == before
    assert (machine.layout.private_dir("/var/lib/bindrop") / "probe").read_text() == "x\n"


def test_reboot_keeps_installed_units_and_data_and_drops_transient_units(spare: Machine) -> None:
    spare.up()
    spare.exec("sh", "-c", """
        printf '[Unit]\\nDescription=kept\\n[Service]\\nExecStart=/bin/sleep 600\\n'\\
'[Install]\\nWantedBy=multi-user.target\\n' > /etc/systemd/system/kept.service
        echo data > /var/lib/bindrop/data
    """)
    spare.exec("systemctl", "enable", "--now", "kept.service")
    spare.exec("systemd-run", "--unit=gone", "/bin/sleep", "600")
    first_boot = spare.exec("cat", "/proc/sys/kernel/random/boot_id").stdout
    assert spare.down() is True
    spare.up()
    assert spare.exec("cat", "/proc/sys/kernel/random/boot_id").stdout  # alive again
    assert spare.exec("systemctl", "is-active", "kept.service").stdout.strip() == "active"
    assert spare.exec("systemctl", "is-active", "gone.service", check=False).stdout.strip() \
        == "inactive"
    assert spare.exec("cat", "/var/lib/bindrop/data").stdout == "data\n"
    assert first_boot


def test_down_leaves_no_process_and_no_cgroup_behind(spare: Machine) -> None:
    state = spare.up()
    spare.exec("systemd-run", "--unit=busy", "/bin/sleep", "600")
    spare.down()
    for pid in (state.boot_pid, state.systemd_pid):
        assert not _running(pid)
    for cgroup in state.cgroups:
        assert not Path(cgroup).exists(), cgroup
    assert spare.read_state() is None


def test_two_machines_run_the_same_unit_name_with_their_own_limits(
    machine: Machine, spare: Machine
) -> None:
    spare.up()
    for m, limit in ((machine, "64M"), (spare, "96M")):
        m.exec("systemd-run", "--unit=bindrop-same", f"--property=MemoryMax={limit}",
               "/bin/sleep", "600")
    try:
        assert machine.exec("systemctl", "show", "-P", "MemoryMax", "bindrop-same").stdout.strip() \
            == str(64 * 2**20)
        assert spare.exec("systemctl", "show", "-P", "MemoryMax", "bindrop-same").stdout.strip() \
            == str(96 * 2**20)
        # Seen from the host, each limit sits in its own machine's cgroup subtree.
        mem = next(Path(c) for c in spare.read_state().cgroups if "/memory/" in c)  # type: ignore[union-attr]
        limit = (mem / "system.slice/bindrop-same.service/memory.limit_in_bytes").read_text()
        assert int(limit) == 96 * 2**20
    finally:
        machine.exec("systemctl", "stop", "bindrop-same")
        spare.exec("systemctl", "stop", "bindrop-same")
