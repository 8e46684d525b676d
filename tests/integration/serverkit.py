"""Helpers for tests of whole servers in machines: a machine of a test module's own, two
machines each in its own network namespace with its own sshd, the CLI run against them over
SSH, and plain GETs through a machine's proxy."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bindrop.machine import Machine

from .hubkit import HANG

SSHD = Path("/usr/sbin/sshd")
#: Where both machines run bindrop over SSH: a wrapper on the first, bootstrap's link on the
#: second. (An ssh session's PATH may hold other bindrops, e.g. a developer's pyenv shims.)
SSH_DIR = "/etc/bdtest-ssh"  # inside each machine: /etc is the machine's own (overlay)


@contextmanager
def installed_machine(tmp_path_factory: pytest.TempPathFactory, prefix: str) -> Iterator[Machine]:
    """A machine of its own (``prefix``-<random>) with bindrop installed as ``bindrop install``
    leaves a server; skips without root; gone, purged, afterwards (also when it failed to
    come up)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    m = Machine(f"{prefix}-{uuid.uuid4().hex[:6]}", tmp_path_factory.mktemp(f"{prefix}-machines"))
    try:
        m.up(bare=False)  # inside: a failed install still brings the machine down
        yield m
    finally:
        m.down(purge=True)


@dataclass
class World:
    old: Machine
    new: Machine
    old_addr: str
    new_addr: str
    env: dict[str, str]
    wheelhouse: Path
    scratch: Path
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def old_url(self) -> str:
        return f"ssh://root@{self.old_addr}"

    @property
    def new_url(self) -> str:
        return f"ssh://root@{self.new_addr}"

    def bindrop(self, *args: str, check: bool = True, timeout: float = 240
                ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "bindrop", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)
        assert proc.returncode == 0 or not check, (args, proc.stdout, proc.stderr)
        return proc


def ssh_world(scratch: Path, prefix: str, subnet: str, wheels: Path) -> tuple[World, Path]:
    """Two machines (not booted yet) named ``prefix``-old/-new at ``subnet``.2 and .3, and
    the CLI's environment to reach them over SSH with a new client key; with the folder of
    that key and of sshd's host key."""
    keys = scratch / "keys"
    keys.mkdir()
    for key in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / key)],
                       check=True)
    tag = uuid.uuid4().hex[:6]
    old = Machine(f"{prefix}-old-{tag}", scratch / "machines")
    new = Machine(f"{prefix}-new-{tag}", scratch / "machines")
    ssh = ["ssh", "-i", str(keys / "client"), "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDROP_")}
    # No BINDROP_REMOTE_COMMAND: `bindrop install` (and bootstrap.sh) put bindrop on the PATH
    # a non-interactive SSH session has, as a user's server would.
    env.update(BINDROP_SSH=" ".join(ssh),
               XDG_CONFIG_HOME=str(scratch / "config"), BDTEST_SSH_JSON=json.dumps(ssh))
    return World(old, new, f"{subnet}.2", f"{subnet}.3", env, wheels, scratch), keys


def get_from(address: str, port: int, host: str, path: str = "/") -> tuple[int, bytes]:
    """GET ``path`` on ``host`` from ``address``:``port``: the status and the body."""
    conn = http.client.HTTPConnection(address, port, timeout=HANG)
    try:
        conn.request("GET", path, headers={"Host": host})
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def get(address: str, host: str, path: str = "/") -> tuple[int, bytes]:
    """GET through the proxy of the machine at ``address`` (port 80)."""
    return get_from(address, 80, host, path)


def start_sshd(m: Machine, keys: Path) -> None:
    """sshd inside the machine (its own network namespace), root in with the test's key."""
    config = (f"Port 22\nListenAddress 0.0.0.0\nHostKey {SSH_DIR}/host\n"
              f"AuthorizedKeysFile {SSH_DIR}/authorized_keys\n"
              "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
              "KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\n"
              "PidFile /run/bdtest-sshd.pid\n")
    m.exec("mkdir", "-p", SSH_DIR, "/run/sshd")
    for name, text in (("sshd_config", config), ("host", (keys / "host").read_text()),
                       ("authorized_keys", (keys / "client.pub").read_text())):
        m.exec("sh", "-c", f"umask 077; cat > {SSH_DIR}/{name}", input=text)
    m.exec("systemd-run", "--unit=bdtest-sshd", "--", str(SSHD), "-D", "-e", "-f",
           f"{SSH_DIR}/sshd_config")


def wait_for_ssh(world: World, address: str) -> None:
    # Generous: after a reboot the machine's boot (hub, proxy, timers that were due) competes
    # with the rest of a full test run for two cores.
    deadline = time.monotonic() + 3 * HANG
    ssh = json.loads(world.env["BDTEST_SSH_JSON"])
    while True:
        # Each attempt bounded: one whose SYN went unanswered (the network namespace still
        # settling after a reboot) must not eat the whole wait.
        try:
            if subprocess.run([*ssh, "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                               f"root@{address}", "true"], capture_output=True, check=False,
                              timeout=15).returncode == 0:
                return
        except subprocess.TimeoutExpired:
            pass
        assert time.monotonic() < deadline, f"sshd on {address} did not come up"
        time.sleep(0.2)
