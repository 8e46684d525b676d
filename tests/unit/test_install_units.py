"""bindrop install's unit rendering: ports, the HTTPS socket on or off, nothing left over."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bindrop.serve.install import UNITS, deploy_dir, installed_units, render_installed_unit


def render(name: str, https_port: int | None) -> str:
    return render_installed_unit((deploy_dir() / name).read_text(), "/opt/bindrop/bin/bindrop",
                                 8080, 7300, "bindrop.example.com", https_port)


@pytest.mark.parametrize("name", UNITS)
def test_every_placeholder_is_filled(name: str) -> None:
    assert re.findall(r"@[A-Z_]+@", render(name, 8443)) == []


def test_the_proxy_takes_both_sockets_when_https_is_on() -> None:
    service = render("bindrop-proxy.service", 8443)
    assert "\nSockets=bindrop-proxy.socket bindrop-proxy-https.socket\n" in service
    assert "\nListenStream=8443\n" in render("bindrop-proxy-https.socket", 8443)
    assert "\nFileDescriptorName=https\n" in render("bindrop-proxy-https.socket", 8443)
    assert "\nListenStream=8080\n" in render("bindrop-proxy.socket", 8443)


def test_with_https_off_there_is_no_https_socket_anywhere() -> None:
    assert "bindrop-proxy-https.socket" not in installed_units(None)
    service = render("bindrop-proxy.service", None)
    assert "bindrop-proxy-https" not in service
    assert "\nSockets=bindrop-proxy.socket\n" in service
    assert installed_units(443)[-1] == "bindrop-proxy.service"  # started after its sockets


def test_the_timers_run_their_oneshots_on_schedule() -> None:
    from bindrop.serve.install import TIMER_SERVICES

    backup = render_installed_unit((deploy_dir() / "bindrop-backup.timer").read_text(), "b",
                                   backup_schedule="*-*-* 03:00")
    assert "\nOnCalendar=*-*-* 03:00\n" in backup and "\nPersistent=true\n" in backup
    assert "\nRandomizedDelaySec=1h\n" in backup
    assert "\nOnUnitActiveSec=15min\n" in render("bindrop-disk.timer", None)
    service = render("bindrop-backup.service", None)
    assert "\nType=oneshot\n" in service and "\nTimeoutStartSec=2h\n" in service
    # A thin client of the hub, queued behind a care run in progress.
    assert "\nExecStart=/opt/bindrop/bin/bindrop backup run --wait\n" in service
    assert set(TIMER_SERVICES) <= set(installed_units(None))


@pytest.mark.parametrize("spec", ["daily", "*-*-* 03:00", "Mon *-*-* 04:00:00"])
def test_a_calendar_spec_is_accepted(spec: str) -> None:
    from bindrop.serve.install import parse_calendar

    assert parse_calendar(spec) == spec


@pytest.mark.parametrize("spec", ["", "whenever", "daily\nExecStart=/bin/sh", "@x@"])
def test_a_bad_calendar_spec_is_refused(spec: str) -> None:
    from bindrop.errors import InvalidInput
    from bindrop.serve.install import parse_calendar

    with pytest.raises(InvalidInput, match="calendar spec"):
        parse_calendar(spec)


def test_install_puts_bindrop_where_a_non_interactive_ssh_session_finds_it(
        tmp_path: Path) -> None:
    from bindrop.serve.install import PATH_LINK, put_on_path
    from bindrop.settings import Settings

    settings = Settings(root=tmp_path / "root")
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    script = venv / "bindrop"
    assert put_on_path(settings, script) is None  # no console script: nothing to link
    script.write_text("#!/bin/sh\n")
    link = settings.root / PATH_LINK.lstrip("/")
    assert put_on_path(settings, script) == link
    assert link.readlink() == script
    assert put_on_path(settings, script) is None  # found on the PATH now: unchanged
    # a link to a bindrop that is gone is replaced; another bindrop on the PATH is left be
    moved = tmp_path / "venv2" / "bin" / "bindrop"
    moved.parent.mkdir(parents=True)
    moved.write_text("#!/bin/sh\n")
    script.unlink()
    assert put_on_path(settings, moved) == link and link.readlink() == moved
    link.unlink()
    system = settings.root / "usr" / "bin" / "bindrop"
    system.parent.mkdir(parents=True)
    system.write_text("#!/bin/sh\n")
    assert put_on_path(settings, moved) is None and not link.is_symlink()
