"""Shared fixtures: one private systemd machine per test session, checked for leftovers."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bindrop.machine import Machine


def _can_boot_machines() -> str | None:
    if os.geteuid() != 0:
        return "integration tests need root (namespaces, mounts)"
    if not Path("/lib/systemd/systemd").exists():
        return "systemd is not installed (apt-get install systemd dbus)"
    return None


@pytest.fixture(scope="session")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    """A bare private machine (systemd + D-Bus + journald) shared by the whole session."""
    reason = _can_boot_machines()
    if reason:
        # In CI the integration tests must run: a machine that cannot boot is a failure there.
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    m = Machine(f"test-{os.getpid()}", tmp_path_factory.mktemp("machines"))
    try:
        m.up(bare=True)  # inside: a boot that fails half-way is still brought down
        yield m
    finally:
        m.down(purge=True)


def list_bindrop_units(machine: Machine) -> list[str]:
    out = machine.exec("systemctl", "list-units", "--all", "--plain", "--no-legend",
                       "bindrop-*", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def _no_bindrop_units_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a bindrop-* unit behind (and clean it up for the next one)."""
    yield
    if "machine" not in request.fixturenames:
        return
    m: Machine = request.getfixturevalue("machine")
    left = list_bindrop_units(m)
    if left:
        for unit in left:
            m.exec("systemctl", "stop", unit, check=False)
            m.exec("systemctl", "reset-failed", unit, check=False)
        pytest.fail(f"test left units behind: {', '.join(left)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI=true a skipped test is a failed one: CI installs everything every test needs
    (scripts/setup.sh), so a skip there means a part went missing, not a choice."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped under CI=true (CI must run every test): {reason}"


@pytest.fixture(scope="module")
def sockets_collected_here() -> Iterator[None]:
    """After a module's last test, collect garbage while its own warning filters still apply.

    For the modules that talk to an ACME CA (pebble): a client socket to the CA is now and then
    found unclosed by the garbage collector (about 1 run in 3 of them before the ACME requests
    went to one connection each; its source not found). Left to chance, the collector finds it
    during some later, unrelated test, which then fails (seen in CI: a backup test). Collected
    here, it is tolerated where it belongs.
    """
    yield
    gc.collect()
