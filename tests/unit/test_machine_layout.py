"""The machine's pure parts: unit path, lab units, cgroup matching, boot script order."""

from __future__ import annotations

from pathlib import Path

import pytest

from bindrop.errors import InvalidInput
from bindrop.machine.layout import (
    UNIT_PATH,
    MachineLayout,
    machine_cgroup_dirs,
    parse_cgroup_mounts,
    render_inner_script,
    render_lab_units,
    validate_machine_name,
)

# Read off a development machine of this project (hybrid cgroups, memory nested elsewhere).
MOUNTS = """\
/dev/vda / ext4 rw,relatime,discard 0 0
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,xattr,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime,nsdelegate 0 0
"""
SELF_CGROUP = """\
9:name=systemd:/
4:memory:/process_api/abc
3:cpuset:/
1:cpu:/
0::/
"""


def test_unit_path_has_no_trailing_colon_so_default_paths_never_load() -> None:
    assert not UNIT_PATH.endswith(":")
    assert "::" not in UNIT_PATH
    assert "/lib/systemd/system" not in UNIT_PATH.split(":")


def test_every_lab_unit_turns_default_dependencies_off() -> None:
    units = render_lab_units()
    assert "sysinit.target" in units and "multi-user.target" in units
    for name, text in units.items():
        assert "DefaultDependencies=no" in text, name


def test_boot_target_wants_bus_and_journal() -> None:
    boot = render_lab_units()["multi-user.target"]
    for wanted in ("dbus.socket", "systemd-journald.socket"):
        assert wanted in boot


def test_cgroup_mounts_are_matched_to_own_place_in_each_hierarchy() -> None:
    mounts = {m.mountpoint: m for m in parse_cgroup_mounts(MOUNTS, SELF_CGROUP)}
    assert set(mounts) == {
        "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpuset",
        "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified",
    }
    assert mounts["/sys/fs/cgroup/memory"].current == "/process_api/abc"
    assert mounts["/sys/fs/cgroup/memory"].options == "memory"
    assert mounts["/sys/fs/cgroup/systemd"].options == "none,name=systemd"
    assert mounts["/sys/fs/cgroup/unified"].fstype == "cgroup2"


def test_machine_cgroups_nest_under_where_the_caller_is() -> None:
    dirs = machine_cgroup_dirs(parse_cgroup_mounts(MOUNTS, SELF_CGROUP), "m1")
    assert Path("/sys/fs/cgroup/memory/process_api/abc/bindrop-machine-m1") in dirs
    assert Path("/sys/fs/cgroup/cpu/bindrop-machine-m1") in dirs


def test_inner_script_mounts_the_machine_folder_before_covering_tmp() -> None:
    layout = MachineLayout("m1", Path("/tmp/x/m1"))
    lines = render_inner_script(layout, parse_cgroup_mounts(MOUNTS, SELF_CGROUP)).splitlines()
    tmp_at = next(i for i, line in enumerate(lines) if line.endswith(" /tmp"))
    uses_folder = [i for i, line in enumerate(lines) if "/tmp/x/m1" in line]
    assert uses_folder and max(uses_folder) < tmp_at
    assert lines[-1].startswith("exec /lib/systemd/systemd --system")
    assert f"export SYSTEMD_UNIT_PATH={UNIT_PATH}" in lines


def test_inner_script_overlays_etc_and_var_so_nothing_reaches_the_host() -> None:
    text = render_inner_script(MachineLayout("m1", Path("/m/m1")), [])
    assert "lowerdir=/etc," in text and "lowerdir=/var," in text
    assert "mount --bind /m/m1/disk/private/var-lib-bindrop /var/lib/bindrop" in text


@pytest.mark.parametrize("name", ["", "Demo", "-x", "x-", "a_b", "a" * 33, "a b"])
def test_invalid_machine_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="machine name"):
        validate_machine_name(name)


@pytest.mark.parametrize("name", ["default", "demo-1", "x", "a" * 32])
def test_valid_machine_name_is_accepted(name: str) -> None:
    assert validate_machine_name(name) == name


def test_only_install_paths_under_tmp_are_shared_outermost_first() -> None:
    from bindrop.machine.machine import hidden_inside

    paths = ["/tmp/ci/repo", "/tmp/ci/repo/.venv", "/usr", "/tmpfoo", "/tmp/ci/repo"]
    assert hidden_inside(paths) == ["/tmp/ci/repo"]


def test_shares_are_staged_before_tmp_is_covered_and_moved_back_after() -> None:
    text = render_inner_script(MachineLayout("m1", Path("/m/m1")), [], ["/tmp/ci/repo"])
    lines = text.splitlines()
    tmp_at = next(i for i, line in enumerate(lines) if line.endswith(" /tmp"))
    stage = next(i for i, line in enumerate(lines) if line.startswith("mount --bind /tmp/ci/repo"))
    move = next(i for i, line in enumerate(lines) if line.startswith("mount --move"))
    assert stage < tmp_at < move
