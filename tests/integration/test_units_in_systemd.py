"""The unit builder against real systemd: what we render is what systemd runs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from bindrop.domain.limits import Limits
from bindrop.machine import Machine
from bindrop.settings import Settings
from bindrop.systemd import Bus, Manager
from bindrop.units import AppSpec, ReleaseSpec, build_app_unit, render_unit_file

pytestmark = pytest.mark.integration

# Everything systemd should agree on, whichever way the unit reached it.
COMPARED = (
    "Type", "WorkingDirectory", "Environment", "User", "DynamicUser", "StateDirectory",
    "Restart", "RestartUSec", "TimeoutStopUSec", "SuccessExitStatus", "SyslogIdentifier",
    "ProtectSystem", "ProtectHome", "PrivateTmp", "NoNewPrivileges", "MemoryMax",
    "CPUQuotaPerSecUSec", "TasksMax", "Slice", "StartLimitIntervalUSec", "StartLimitBurst",
    "CollectMode", "LogExtraFields", "Description",
)


@pytest.fixture
async def manager(machine: Machine) -> AsyncIterator[Manager]:
    async with Bus(machine.bus_address) as bus:
        manager = Manager(bus)
        try:
            yield manager
        finally:
            manager.close()


def show(machine: Machine, unit: str) -> dict[str, str]:
    out = machine.exec("systemctl", "show", unit, "--no-pager").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def exec_argv(value: str) -> str:
    """``ExecStart`` as shown, without the runtime part (pid, times, status)."""
    return value.split(" ; ignore_errors=")[0]


async def test_transient_unit_and_its_rendered_file_agree_in_systemd(
    machine: Machine, manager: Manager
) -> None:
    app = AppSpec("agree", {"GREETING": "hello world", "QUOTE": 'say "hi"'},
                  Limits(memory_max=64 * 2**20, cpu_quota=50, tasks_max=32))
    release = ReleaseSpec(uuid.uuid4().hex[:6], "/bin/sh",
                          ("-c", 'echo "price: $1 for $GREETING"; exec sleep 300', "sh", "$5"),
                          port=20999)
    spec = build_app_unit(app, release, Settings())
    file_unit = spec.name.replace("bindrop-app-", "bindrop-file-")
    machine.exec("sh", "-c", f"cat > /etc/systemd/system/{file_unit}",
                 input=render_unit_file(spec))
    machine.exec("systemctl", "daemon-reload")
    await manager.start_transient_unit(spec.name, spec.properties)
    try:
        machine.exec("systemctl", "start", file_unit)
        transient, from_file = show(machine, spec.name), show(machine, file_unit)
        for key in COMPARED:
            assert transient.get(key) == from_file.get(key), key
        assert exec_argv(transient["ExecStart"]) == exec_argv(from_file["ExecStart"])
        # Limits are applied, as systemd reports them.
        assert transient["MemoryMax"] == str(64 * 2**20)
        assert transient["CPUQuotaPerSecUSec"] == "500ms"
        assert transient["TasksMax"] == "32"
        # "$" reached the program literally; env values with spaces and quotes intact.
        async with asyncio.timeout(30):
            while True:
                logs = machine.exec("journalctl", "-u", spec.name, "-o", "cat").stdout
                if "price:" in logs:
                    break
                await asyncio.sleep(0.1)
        assert "price: $5 for hello world" in logs
        fields = machine.exec("journalctl", "BINDROP_APP=agree", "-o", "cat").stdout
        assert "price: $5" in fields
    finally:
        await manager.stop_unit(spec.name)
        machine.exec("systemctl", "stop", file_unit, check=False)
        machine.exec("rm", "-f", f"/etc/systemd/system/{file_unit}")
        machine.exec("systemctl", "daemon-reload")


async def test_app_data_directory_is_shared_by_releases(
    machine: Machine, manager: Manager
) -> None:
    app = AppSpec("shared-data")
    first, second = (build_app_unit(app, ReleaseSpec(
        r, "/bin/sh", ("-c", script), port=20998), Settings()) for r, script in (
        ("1", "echo one > data.txt"),
        ("2", "cat data.txt; test -w data.txt && echo writable"),
    ))
    for spec in (first, second):
        props = [p for p in spec.properties if p.name != "Restart"]
        await manager.start_transient_unit(spec.name, props)
    async with asyncio.timeout(30):
        while "writable" not in (logs := machine.exec(
                "journalctl", "-u", second.name, "-o", "cat").stdout):
            await asyncio.sleep(0.1)
    # Release 2 read what release 1 wrote, and may still write it: one owner for both.
    own = [line for line in logs.splitlines() if "bindrop-app-shared-data" not in line]
    assert own[:2] == ["one", "writable"]
