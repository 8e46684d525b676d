"""``bindrop machine``: a disposable server with a real systemd as PID 1, anywhere.

Boots systemd in its own namespaces (pid, mount, uts, cgroup) with a unit path of its own,
a private /run, /tmp and cgroup subtree, and /etc and /var overlaid onto the machine's folder,
so several machines run side by side and nothing they write reaches the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bindrop.errors import MachineError, NotFound
from bindrop.machine.layout import (
    OVERLAID,
    PRIVATE_DIRS,
    MachineLayout,
    machine_cgroup_dirs,
    parse_cgroup_mounts,
    render_boot_script,
    render_inner_script,
    render_lab_units,
    validate_machine_name,
)
from bindrop.machine.network import MachineNet, set_up, tear_down
from bindrop.settings import DEFAULT_API_PORT, DEFAULT_CONTROL_HOST, DEFAULT_DASHBOARD_HOST

BOOT_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class MachineState:
    """What ``up`` recorded about a running machine (host pids)."""

    name: str
    boot_pid: int  # the unshare process; it exits when the machine's PID 1 does
    systemd_pid: int  # the machine's PID 1, seen from the host
    http_port: int | None
    bare: bool
    cgroups: list[str]
    started_at: float
    #: The control API's TCP port (through the proxy at ``DEFAULT_CONTROL_HOST``).
    api_port: int | None = None
    #: ``ADDR/PREFIX`` when the machine has a network namespace of its own (``--net``).
    net: str | None = None
    #: The proxy's HTTPS port (``--https-port``); None: no HTTPS listener.
    https_port: int | None = None

    @property
    def address(self) -> str:
        """Where the host reaches the machine's ports."""
        return self.net.split("/")[0] if self.net else "127.0.0.1"


@dataclass(frozen=True)
class MachineStatus:
    name: str
    dir: str
    running: bool
    systemd_pid: int | None
    http_port: int | None
    system_state: str | None


class Machine:
    """One machine, by name, in ``machines_dir``. Cheap to construct; does no IO until asked."""

    def __init__(self, name: str, machines_dir: Path) -> None:
        self.name = validate_machine_name(name)
        self.layout = MachineLayout(name, machines_dir / name)

    @property
    def bus_address(self) -> str:
        return self.layout.bus_address

    @property
    def control_socket(self) -> Path:
        return self.layout.control_socket

    # -- state ---------------------------------------------------------------------------

    def read_state(self) -> MachineState | None:
        """The recorded state if the machine is running, else None (stale records are ignored)."""
        try:
            data = json.loads(self.layout.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        state = MachineState(**data)
        if not _is_machine_init(state.systemd_pid):
            return None
        return state

    def running_state(self) -> MachineState:
        state = self.read_state()
        if state is None:
            raise NotFound(f"machine {self.name!r} is not running: start it with "
                           f"`bindrop machine up --name {self.name}`")
        return state

    @property
    def systemd_pid(self) -> int:
        return self.running_state().systemd_pid

    def status(self) -> MachineStatus:
        state = self.read_state()
        system_state = None
        if state is not None:
            proc = self.exec("systemctl", "is-system-running", check=False, state=state)
            system_state = proc.stdout.strip() or None
        return MachineStatus(
            name=self.name,
            dir=str(self.layout.dir),
            running=state is not None,
            systemd_pid=state.systemd_pid if state else None,
            http_port=state.http_port if state else None,
            system_state=system_state,
        )

    # -- up ------------------------------------------------------------------------------

    def up(self, *, http_port: int | None = None, bare: bool = True,
           timeout: float = BOOT_TIMEOUT, net: str | None = None,
           https_port: int | None = None) -> MachineState:
        """Boot the machine and wait until its systemd is running. Idempotent when already up.

        The ports of an earlier boot are kept (an installed bindrop listens on them again
        after a reboot, ``bare`` or not); a first boot that installs bindrop picks free ones.
        ``net`` (``ADDR[/PREFIX]``) gives the machine a network namespace of its own with that
        address on a host bridge (``bindrop.machine.network``); it then uses a server's
        ports (80, and 7300 for the API) since they clash with nobody. ``https_port`` opens
        the proxy's HTTPS listener there (off by default: 443 is the host's).
        """
        existing = self.read_state()
        if existing is not None:
            return existing
        machine_net = MachineNet.parse(self.name, net) if net else None
        if machine_net is not None:
            http_port = http_port or self._previous_port("http-port") or (None if bare else 80)
        # The machine shares the host's network: port 80 (or the API's 7300) would clash with
        # the host and with other machines.
        http_port = http_port or self._previous_port("http-port") or (
            None if bare else free_port())
        api_port = self._previous_port("api-port")
        https_port = https_port or self._previous_port("https-port")
        if machine_net is not None and not bare and api_port is None:
            api_port = DEFAULT_API_PORT
        while not bare and api_port in (None, http_port):
            api_port = free_port()
        if os.geteuid() != 0:
            raise MachineError("bindrop machine needs root (it creates namespaces and mounts)")
        for tool in ("unshare", "nsenter", "/lib/systemd/systemd", "/usr/bin/dbus-daemon"):
            if shutil.which(tool) is None:
                raise MachineError(f"{tool} is missing: install the packages util-linux, systemd "
                                   "and dbus (apt-get install systemd dbus util-linux)")
        self._prepare_disk()
        mounts = parse_cgroup_mounts(
            Path("/proc/self/mounts").read_text(), Path("/proc/self/cgroup").read_text()
        )
        cgroups = machine_cgroup_dirs(mounts, self.name)
        _remove_cgroups(cgroups)  # leftovers of a machine that was killed, if any
        for d in cgroups:
            _make_cgroup(d)
        lay = self.layout
        if machine_net is not None:
            # Recorded first: `down` removes the network even when this boot fails half-way.
            (lay.dir / "net").write_text(str(machine_net.interface))
            set_up(machine_net)
        lay.boot_script.write_text(render_boot_script(
            lay, cgroups, netns=machine_net.netns_path if machine_net else None))
        shares = hidden_inside(_install_paths())
        lay.inner_script.write_text(render_inner_script(lay, mounts, shares))
        lay.pid_file.unlink(missing_ok=True)
        with open(lay.console_log, "ab") as console:
            # setsid --fork: the boot process is nobody's child here, so it outlives the CLI
            # and leaves no zombie or "still running" Popen behind.
            subprocess.run(
                ["setsid", "--fork", "/bin/bash", str(lay.boot_script)],
                stdin=subprocess.DEVNULL, stdout=console, stderr=console, cwd="/", check=True,
            )
        deadline = time.monotonic() + timeout
        boot_pid = _wait_for(lambda: _read_int(lay.pid_file), deadline, "the boot script to start")
        systemd_pid = _wait_for(lambda: _first_child(boot_pid), deadline, "systemd to start",
                                alive=boot_pid, console=lay.console_log)
        state = MachineState(
            name=self.name, boot_pid=boot_pid, systemd_pid=systemd_pid, http_port=http_port,
            bare=bare, cgroups=[str(c) for c in cgroups], started_at=time.time(),
            api_port=api_port, net=str(machine_net.interface) if machine_net else None,
            https_port=https_port,
        )
        _wait_for(lambda: _is_machine_init(systemd_pid) or None, deadline, "systemd to exec",
                  alive=boot_pid, console=lay.console_log)
        lay.state_file.write_text(json.dumps(asdict(state), indent=2) + "\n")
        for file, port in (("http-port", http_port), ("api-port", api_port),
                           ("https-port", https_port)):
            if port is not None:
                (lay.dir / file).write_text(json.dumps(port))
        self._wait_running(state, deadline)
        if not bare:
            self.install_bindrop(state)
        return state

    def install_bindrop(self, state: MachineState | None = None) -> None:
        """Install and start bindrop's services inside, with this very bindrop's Python."""
        state = state or self.running_state()
        port = state.http_port or 80
        # HTTPS only when asked for: a machine shares the host's network and 443 is the host's.
        proc = self.exec(sys.executable, "-m", "bindrop", "install", "--http-port", str(port),
                         "--https-port", str(state.https_port or "off"),
                         "--api-port", str(state.api_port or "off"),
                         "--control-host", DEFAULT_CONTROL_HOST, check=False, state=state)
        if proc.returncode != 0:
            raise MachineError(f"installing bindrop in machine {self.name!r} failed: "
                               f"{(proc.stderr or proc.stdout).strip()}")

    def _previous_port(self, file: str) -> int | None:
        try:
            port = json.loads((self.layout.dir / file).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return port if isinstance(port, int) else None

    @property
    def http_url(self) -> str | None:
        state = self.read_state()
        return f"http://{state.address}:{state.http_port}" if state and state.http_port else None

    def _prepare_disk(self) -> None:
        lay = self.layout
        lay.dir.mkdir(parents=True, exist_ok=True)
        # /run is volatile on a server: a fresh one at every boot.
        if lay.run.exists():
            shutil.rmtree(lay.run)
        lay.units.mkdir(parents=True)
        for name, text in render_lab_units().items():
            (lay.units / name).write_text(text)
        for tree in OVERLAID:
            for d in lay.overlay_dirs(tree):
                d.mkdir(parents=True, exist_ok=True)
        for inside in PRIVATE_DIRS:
            lay.private_dir(inside).mkdir(parents=True, exist_ok=True)
        lay.private_dir("/var/lib/private").chmod(0o700)
        if not lay.machine_id_file.exists():
            lay.machine_id_file.write_text(uuid.uuid4().hex + "\n")

    def _wait_running(self, state: MachineState, deadline: float) -> None:
        while True:
            proc = self.exec("systemctl", "is-system-running", check=False, state=state)
            answer = proc.stdout.strip()
            if answer in ("running", "degraded"):
                return
            if not _alive(state.boot_pid):
                raise MachineError(f"machine {self.name!r} stopped while booting; see "
                                   f"{self.layout.console_log}")
            if time.monotonic() > deadline:
                raise MachineError(f"machine {self.name!r} did not finish booting (systemd says "
                                   f"{answer or proc.stderr.strip()!r}); see "
                                   f"{self.layout.console_log}")
            time.sleep(0.1)

    # -- inside --------------------------------------------------------------------------

    def nsenter_argv(self, argv: Sequence[str], state: MachineState | None = None) -> list[str]:
        state = state or self.running_state()
        net = ["-n"] if state.net else []  # its own network namespace, when it has one
        return ["nsenter", "-t", str(state.systemd_pid), "-m", "-p", "-u", *net, "--wd=/", "--",
                *argv]

    def exec(self, *argv: str, check: bool = True, state: MachineState | None = None,
             input: str | None = None, timeout: float | None = 120,
             env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the machine and capture its output (text)."""
        proc = subprocess.run(
            self.nsenter_argv(argv, state), capture_output=True, text=True, input=input,
            timeout=timeout, env=_inside_env(env), check=False,
        )
        if check and proc.returncode != 0:
            raise MachineError(f"`{' '.join(argv)}` failed in machine {self.name!r} "
                               f"(exit {proc.returncode}): {proc.stderr.strip()}")
        return proc

    # -- down ----------------------------------------------------------------------------

    def down(self, *, purge: bool = False, timeout: float = STOP_TIMEOUT) -> bool:
        """Power off: stop every unit that has default dependencies, then end PID 1.

        Leaves the disk, so ``up`` again is a reboot; ``purge`` deletes the machine's folder.
        Returns whether a running machine was stopped.
        """
        state = self.read_state()
        was_running = state is not None
        if state is not None:
            # Every service with default dependencies conflicts with shutdown.target: starting
            # it stops the apps and bindrop's services the way a poweroff would. journald and
            # D-Bus have DefaultDependencies=no and keep running until PID 1 ends.
            self.exec("systemctl", "start", "--job-mode=replace-irreversibly", "shutdown.target",
                      check=False, state=state, timeout=timeout)
            self.exec("journalctl", "--sync", check=False, state=state, timeout=10)
            _kill(state.systemd_pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
            while _alive(state.boot_pid) or _alive(state.systemd_pid):
                if time.monotonic() > deadline:
                    raise MachineError(f"machine {self.name!r} did not stop (pid "
                                       f"{state.systemd_pid})")
                time.sleep(0.05)
            _remove_cgroups([Path(c) for c in state.cgroups])
        net_file = self.layout.dir / "net"
        if net_file.exists():
            tear_down(MachineNet.parse(self.name, net_file.read_text().strip()))
            net_file.unlink()
        self.layout.state_file.unlink(missing_ok=True)
        if self.layout.run.exists():
            shutil.rmtree(self.layout.run, ignore_errors=True)
        if purge and self.layout.dir.exists():
            shutil.rmtree(self.layout.dir)
        return was_running

    def env_lines(self) -> list[str]:
        """Shell lines that point a client outside at this machine."""
        state = self.running_state()
        lines = [f"export BINDROP_SERVER=unix:{self.control_socket}"]
        if state.http_port:
            lines.append(f"export BINDROP_HTTP_URL=http://{state.address}:{state.http_port}")
            # *.localhost URLs reach 127.0.0.1: not a machine with a network of its own.
            if state.api_port and not state.net:
                # The control API through the machine's proxy, as from a laptop (a token
                # needed); *.localhost is 127.0.0.1 to curl and bindrop's client.
                lines.append(f"export BINDROP_REMOTE_URL="
                             f"{remote_url(DEFAULT_CONTROL_HOST, state.http_port)}")
                # The dashboard, a system app `bindrop install` sets up at its default host.
                lines.append(f"export BINDROP_DASHBOARD_URL="
                             f"{remote_url(DEFAULT_DASHBOARD_HOST, state.http_port)}")
        return lines


def remote_url(control_host: str, http_port: int) -> str:
    """The control API's URL through a proxy on ``http_port``. Pure."""
    return f"http://{control_host}:{http_port}"


def _install_paths() -> list[str]:
    """Where this bindrop and its Python live: the machine's services run the same code."""
    import bindrop

    return [str(Path(bindrop.__file__).resolve().parents[1]), sys.prefix,
            str(Path(sys.executable).resolve().parent)]


def hidden_inside(paths: Sequence[str]) -> list[str]:
    """The paths (deduplicated, outermost only) a machine's private /tmp would hide."""
    hidden = sorted({p for p in paths if p == "/tmp" or p.startswith("/tmp/")})
    return [p for p in hidden if not any(p.startswith(q + "/") for q in hidden if q != p)]


def list_machines(machines_dir: Path) -> list[Machine]:
    if not machines_dir.is_dir():
        return []
    return [Machine(p.name, machines_dir) for p in sorted(machines_dir.iterdir())
            if (p / "machine-id").exists()]


# -- host process helpers ----------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _inside_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    # The caller's bus addresses and runtime dirs point at the host; inside, defaults are right.
    env = {k: v for k, v in os.environ.items()
           if k not in ("DBUS_SYSTEM_BUS_ADDRESS", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR",
                        "BINDROP_BUS_ADDRESS", "BINDROP_SERVER", "BINDROP_ROOT", "NOTIFY_SOCKET",
                        "INVOCATION_ID", "JOURNAL_STREAM")}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env["SYSTEMD_PAGER"] = ""
    env["SYSTEMD_COLORS"] = "0"
    if extra:
        env.update(extra)
    return env


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _first_child(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(children[0]) if children else None


def _is_machine_init(pid: int) -> bool:
    """True if ``pid`` is alive and is a systemd running as a machine's PID 1."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    nspid = next((line.split()[-1] for line in status.splitlines()
                  if line.startswith("NSpid:")), "")
    return cmdline[0].endswith(b"systemd") and nspid == "1"


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_for(probe, deadline: float, what: str, *, alive: int | None = None,  # type: ignore[no-untyped-def]
              console: Path | None = None) -> int:
    while True:
        value = probe()
        if value:
            return value  # type: ignore[no-any-return]
        if alive is not None and not _alive(alive):
            tail = console.read_text()[-2000:] if console and console.exists() else ""
            raise MachineError(f"machine failed to boot while waiting for {what}:\n{tail}")
        if time.monotonic() > deadline:
            raise MachineError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _make_cgroup(path: Path) -> None:
    path.mkdir(exist_ok=True)
    # A v1 cpuset cgroup starts with no cpus or mems and then refuses every process.
    for name in ("cpuset.cpus", "cpuset.mems"):
        mine, parent = path / name, path.parent / name
        if mine.exists() and not mine.read_text().strip():
            mine.write_text(parent.read_text())


def _remove_cgroups(dirs: list[Path]) -> None:
    """Remove each machine cgroup and everything systemd created below it, deepest first."""
    for top in dirs:
        if not top.is_dir():
            continue
        subdirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*subdirs, top]:
            with contextlib.suppress(OSError):  # still busy: left for the next up to retry
                d.rmdir()
