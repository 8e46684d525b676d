"""Issue #14's "done when" on a whole machine: `machine up --https-port`, then `tls setup`
with pebble, `create` and `deploy` are enough for curl to verify HTTPS; plain HTTP is a 308.

bindrop.service and the proxy's workers run as installed units inside the machine; pebble
runs on the host (a machine shares its network) and validates on the machine's HTTP port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bindrop.machine import Machine
from tests.tls.pebble import Pebble, free_port, have_pebble, running_pebble

from .hubkit import HELLO

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not have_pebble(), reason="needs pebble (apt install pebble)")]

ISSUE_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def secure_machine(tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[tuple[Machine, Pebble, Path]]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    m = Machine(f"tls-{uuid.uuid4().hex[:6]}", tmp_path_factory.mktemp("tls-machines"))
    work = tmp_path_factory.mktemp("pebble")
    try:
        state = m.up(bare=False, https_port=free_port())
        assert state.http_port and state.https_port
        with running_pebble(work, state.http_port) as pebble:
            root = work / "root.pem"
            root.write_bytes(pebble.root_pem())
            yield m, pebble, root
    finally:
        m.down(purge=True)


def run_bindrop(m: Machine, *args: str) -> str:
    env = {**os.environ, "BINDROP_SERVER": f"unix:{m.control_socket}"}
    proc = subprocess.run([sys.executable, "-m", "bindrop", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True,
                          text=True, check=False)


def test_https_port_tls_setup_create_and_deploy_serve_a_verified_certificate(
        secure_machine: tuple[Machine, Pebble, Path]) -> None:
    m, pebble, root = secure_machine
    state = m.read_state()
    assert state is not None and state.http_port and state.https_port
    run_bindrop(m, "tls", "setup", "--email", "ops@example.com", "--directory",
                pebble.directory_url, "--directory-ca", str(pebble.listen_cert))
    run_bindrop(m, "create", "secure", "--host", "secure.example.com")
    run_bindrop(m, "deploy", "secure", str(HELLO))
    deadline = time.monotonic() + ISSUE_TIMEOUT
    while True:
        names = json.loads(run_bindrop(m, "tls", "list", "--json"))["names"]
        [name] = [n for n in names if n["name"] == "secure.example.com"]
        if name["state"] == "valid":
            break
        assert time.monotonic() < deadline, name
        time.sleep(0.5)
    https, http = state.https_port, state.http_port
    answer = curl("--cacert", str(root), "--resolve", f"secure.example.com:{https}:127.0.0.1",
                  f"https://secure.example.com:{https}/")
    assert answer.returncode == 0, answer.stderr
    assert "from secure release 1" in answer.stdout
    plain = curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "--resolve",
                 f"secure.example.com:{http}:127.0.0.1", f"http://secure.example.com:{http}/p")
    assert plain.stdout == f"308 https://secure.example.com:{https}/p", plain
    key = m.layout.private_dir("/etc/bindrop") / "tls" / "secure.example.com.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_install_adds_the_renewal_timer_and_its_service_renews_through_the_hub(
        secure_machine: tuple[Machine, Pebble, Path]) -> None:
    m, _, _ = secure_machine
    enabled = m.exec("systemctl", "is-enabled", "bindrop-tls.timer", check=False)
    assert enabled.stdout.strip() == "enabled"
    timer = m.exec("systemctl", "show", "bindrop-tls.timer", "-p", "Persistent",
                   "-p", "RandomizedDelayUSec").stdout
    assert "Persistent=yes" in timer and "RandomizedDelayUSec=12h" in timer
    ran = m.exec("systemctl", "start", "bindrop-tls.service", check=False)
    assert ran.returncode == 0, m.exec("journalctl", "-u", "bindrop-tls.service", "-o",
                                       "cat", check=False).stdout
    for _ in range(100):  # journald stores the output a little after the oneshot ended
        log = m.exec("journalctl", "-u", "bindrop-tls.service", "-o", "cat").stdout
        if "secure.example.com" in log or "nothing to renew" in log:
            break
        time.sleep(0.2)
    assert "secure.example.com" in log or "nothing to renew" in log, log
