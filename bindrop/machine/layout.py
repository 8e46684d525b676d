"""Pure pieces of a private machine: its folder layout, its unit files, its boot scripts.

Nothing here touches the disk; ``bindrop.machine.machine`` writes what these return.

A machine is a systemd running as PID 1 of its own pid, mount, uts and cgroup namespaces
(see shared/systemd-lab.md). Its unit path is ours alone: systemd must never load the host's
default unit paths, or it starts ``sysinit.target`` for real and ``systemd-tmpfiles`` empties
the host's /tmp.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bindrop.errors import InvalidInput

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")

#: Inside the machine: where our own unit files live (under the machine's own /run).
UNIT_DIR_INSIDE = "/run/bindrop-machine/units"
#: Installed units go where a server keeps them; all of these dirs are the machine's own.
#: systemd only searches what is listed here: the transient and control dirs must be too, or
#: a daemon-reload turns running transient units into "not-found" and set-property is lost.
UNIT_PATH = ":".join((
    "/run/systemd/transient",
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    UNIT_DIR_INSIDE,
    "/etc/systemd/system",
))

#: Directories that are the machine's own, bind-mounted from its folder (issue: nothing leaks).
PRIVATE_DIRS = (
    "/etc/bindrop",
    "/etc/systemd/system",
    "/var/lib/bindrop",
    "/var/lib/private",
    "/var/backups/bindrop",
)

#: Trees overlaid so that whatever the machine writes there (mount points, journal,
#: /var/lib/systemd timer stamps) lands in its folder, never on the host.
OVERLAID = ("/etc", "/var", "/opt", "/usr/local")

STUB_TARGETS = (
    "sysinit", "basic", "shutdown", "timers", "sockets", "paths", "slices", "local-fs",
    "local-fs-pre", "network", "network-online", "network-pre", "umount", "final", "time-set",
    "time-sync", "swap", "remote-fs", "remote-fs-pre", "nss-lookup", "nss-user-lookup",
    "getty", "rescue", "emergency", "graphical", "cryptsetup", "sound", "printer",
)


def validate_machine_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInput(
            f"machine name {name!r} is not valid: use 1-32 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class MachineLayout:
    """Where one machine keeps its things on the host (all under ``dir``)."""

    name: str
    dir: Path

    @property
    def run(self) -> Path:
        """Bind-mounted onto the machine's /run; emptied at every boot, like a tmpfs."""
        return self.dir / "run"

    @property
    def disk(self) -> Path:
        """What survives a reboot: overlay upper dirs and the private directories."""
        return self.dir / "disk"

    @property
    def units(self) -> Path:
        return self.run / UNIT_DIR_INSIDE.removeprefix("/run/")

    @property
    def bus_socket(self) -> Path:
        return self.run / "dbus" / "system_bus_socket"

    @property
    def bus_address(self) -> str:
        return f"unix:path={self.bus_socket}"

    @property
    def control_socket(self) -> Path:
        return self.run / "bindrop" / "control.sock"

    @property
    def state_file(self) -> Path:
        return self.dir / "machine.json"

    @property
    def pid_file(self) -> Path:
        return self.dir / "boot.pid"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    @property
    def machine_id_file(self) -> Path:
        return self.dir / "machine-id"

    @property
    def boot_script(self) -> Path:
        return self.dir / "boot.sh"

    @property
    def inner_script(self) -> Path:
        return self.dir / "boot-inner.sh"

    def private_dir(self, inside: str) -> Path:
        return self.disk / "private" / inside.strip("/").replace("/", "-")

    def overlay_dirs(self, inside: str) -> tuple[Path, Path]:
        base = self.disk / "overlay" / inside.strip("/").replace("/", "-")
        return base / "upper", base / "work"


def render_lab_units() -> dict[str, str]:
    """The machine's whole unit path: a boot target, D-Bus, journald and empty stub targets.

    Every unit has ``DefaultDependencies=no``; transient services get default dependencies on
    several stub targets and fail with "Unit sysinit.target not found" without them.
    """
    units: dict[str, str] = {}
    for target in STUB_TARGETS:
        units[f"{target}.target"] = _unit(f"Stub {target} target of a bindrop machine")
    units["multi-user.target"] = _unit(
        "bindrop machine",
        "Wants=dbus.socket systemd-journald.socket dbus.service systemd-journald.service "
        "systemd-journal-flush.service sockets.target timers.target",
        "After=dbus.socket systemd-journald.socket",
    )
    units["dbus.socket"] = _unit(
        "D-Bus system message bus socket",
        section="Socket",
        body=["ListenStream=/run/dbus/system_bus_socket"],
    )
    units["dbus.service"] = _unit(
        "D-Bus system message bus",
        "Requires=dbus.socket",
        "After=dbus.socket",
        section="Service",
        body=[
            "ExecStart=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile "
            "--systemd-activation --syslog-only",
            "ExecReload=/usr/bin/dbus-send --print-reply --system --type=method_call "
            "--dest=org.freedesktop.DBus / org.freedesktop.DBus.ReloadConfig",
            "OOMScoreAdjust=-900",
        ],
    )
    units["systemd-journald.socket"] = _unit(
        "Journal socket",
        section="Socket",
        body=[
            "ListenStream=/run/systemd/journal/stdout",
            "ListenDatagram=/run/systemd/journal/socket",
            "SocketMode=0666",
            "PassCredentials=yes",
            "PassSecurity=yes",
            "ReceiveBuffer=8M",
            "Service=systemd-journald.service",
        ],
    )
    units["systemd-journald.service"] = _unit(
        "Journal service",
        "Requires=systemd-journald.socket",
        "After=systemd-journald.socket",
        section="Service",
        body=[
            "Type=notify",
            "ExecStart=/lib/systemd/systemd-journald",
            "Sockets=systemd-journald.socket",
            "Restart=always",
            "RestartSec=0",
            "RuntimeDirectory=systemd/journal",
            "RuntimeDirectoryPreserve=yes",
            "FileDescriptorStoreMax=4224",
            "StandardOutput=null",
        ],
    )
    # Moves the journal from /run to /var/log/journal (the machine's overlay), so logs
    # survive `machine down` + `up` like on a server.
    units["systemd-journal-flush.service"] = _unit(
        "Flush the journal to persistent storage",
        "Requires=systemd-journald.service",
        "After=systemd-journald.service",
        section="Service",
        body=["Type=oneshot", "RemainAfterExit=yes", "ExecStart=/bin/journalctl --flush"],
    )
    return units


def _unit(
    description: str, *unit_lines: str, section: str | None = None, body: list[str] | None = None
) -> str:
    lines = ["[Unit]", f"Description={description}", "DefaultDependencies=no", *unit_lines]
    if section:
        lines += ["", f"[{section}]", *(body or [])]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class CgroupMount:
    """One mounted cgroup hierarchy on the host, and this process's place in it."""

    mountpoint: str
    fstype: str  # "cgroup" (v1) or "cgroup2"
    options: str  # controllers for v1, e.g. "memory" or "none,name=systemd"
    current: str  # this process's cgroup path within the hierarchy, e.g. "/process_api/x"


def parse_cgroup_mounts(mounts: str, self_cgroup: str) -> list[CgroupMount]:
    """Match /proc/self/mounts against /proc/self/cgroup: every hierarchy and where we are in it."""
    by_controllers: dict[frozenset[str], str] = {}
    for line in self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            by_controllers[frozenset(filter(None, parts[1].split(",")))] = parts[2]
    result: list[CgroupMount] = []
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] not in ("cgroup", "cgroup2"):
            continue
        mountpoint, fstype, opts = fields[1], fields[2], fields[3].split(",")
        if fstype == "cgroup2":
            result.append(CgroupMount(mountpoint, fstype, "", by_controllers.get(frozenset(), "/")))
            continue
        controllers = [o for o in opts
                       if o not in _MOUNT_FLAGS and not o.startswith("release_agent")]
        named = [c for c in controllers if c != "none"]
        current = by_controllers.get(frozenset(named), "/")
        # A named hierarchy (name=systemd) has no controller and must be mounted with "none".
        options = ",".join(named)
        if any(c.startswith("name=") for c in named):
            options = "none," + options
        result.append(CgroupMount(mountpoint, fstype, options, current))
    return result


_MOUNT_FLAGS = frozenset(
    {"rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "strictatime", "xattr",
     "clone_children", "nsdelegate", "memory_recursiveprot", "cpuset_v2_mode", "noprefix"}
)


def machine_cgroup_dirs(mounts: list[CgroupMount], name: str) -> list[Path]:
    """The machine's own cgroup in every hierarchy, under where the caller already is."""
    leaf = f"bindrop-machine-{name}"
    return [Path(m.mountpoint) / m.current.lstrip("/") / leaf for m in mounts]


def render_boot_script(layout: MachineLayout, cgroup_dirs: list[Path],
                       netns: str | None = None) -> str:
    """Host side: join the machine's cgroups, then unshare into fresh namespaces (inside the
    network namespace at ``netns`` when the machine has one of its own)."""
    q = shlex.quote
    lines = [
        "#!/bin/bash",
        "# generated by bindrop machine: host side of the boot",
        "set -eu",
        f"echo $$ > {q(str(layout.pid_file))}",
        # Fresh cgroup mounts inside a new cgroup namespace are rooted where the process
        # was when it unshared, so two machines never share /system.slice/<unit>.
        *(f"echo $$ > {q(str(d / 'cgroup.procs'))}" for d in cgroup_dirs),
        "exec " + (f"nsenter --net={q(netns)} " if netns else "")
        + "unshare --pid --fork --mount --uts --cgroup --mount-proc --propagation private "
        f"/bin/bash {q(str(layout.inner_script))}",
    ]
    return "\n".join(lines) + "\n"


def render_inner_script(layout: MachineLayout, mounts: list[CgroupMount],
                        shares: Sequence[str] = ()) -> str:
    """Inside the namespaces: private /sys/fs/cgroup, /run, /etc, /var, /tmp; then systemd.

    Order matters: everything taken from the machine's folder is mounted before /tmp is
    covered, because that folder may itself live under the host's /tmp. ``shares`` are host
    directories shown at the same path inside (bindrop's own installation, when it lives
    under /tmp): staged under /run before the private /tmp hides them, then moved back.
    """
    q = shlex.quote
    lines = [
        "#!/bin/bash",
        "# generated by bindrop machine: runs as PID 1 of the machine until it execs systemd",
        "set -eu",
        "cd /",
        "mount -t tmpfs -o mode=755,nosuid,nodev,noexec cgroup-root /sys/fs/cgroup",
    ]
    for m in mounts:
        mp = q(m.mountpoint)
        lines.append(f"mkdir -p {mp}")
        if m.fstype == "cgroup2":
            lines.append(f"mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 {mp}")
        else:
            lines.append(f"mount -t cgroup -o nosuid,nodev,noexec,{m.options} cgroup {mp}")
    for tree in OVERLAID:
        upper, work = layout.overlay_dirs(tree)
        lines.append(
            f"mount -t overlay overlay -o lowerdir={tree},upperdir={q(str(upper))},"
            f"workdir={q(str(work))} {tree}"
        )
    for inside in PRIVATE_DIRS:
        lines += [
            f"mkdir -p {inside}",
            f"mount --bind {q(str(layout.private_dir(inside)))} {inside}",
        ]
    lines += [
        f"mount --bind {q(str(layout.machine_id_file))} /etc/machine-id",
        f"mount --bind {q(str(layout.run))} /run",
        "mkdir -p /run/systemd /run/dbus /run/bindrop",
    ]
    staged = [(share, f"/run/bindrop-machine/shares/{i}") for i, share in enumerate(shares)]
    for share, stage in staged:
        lines += [f"mkdir -p {stage}", f"mount --bind {q(share)} {stage}"]
    lines += [
        "mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp",
        *(line for share, stage in staged
          for line in (f"mkdir -p {q(share)}", f"mount --move {stage} {q(share)}")),
        f"hostname {q(layout.name)}",
        f"echo {q(layout.name)} > /etc/hostname",
        "export container=bindrop-machine",
        # No trailing colon: a trailing colon would append the default unit paths.
        f"export SYSTEMD_UNIT_PATH={UNIT_PATH}",
        "exec /lib/systemd/systemd --system --unit=multi-user.target",
    ]
    return "\n".join(lines) + "\n"
