"""bindrop.service in a machine of its own: kill -9, SIGTERM and a reboot leave apps alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from bindrop.machine import Machine
from bindrop.proxy.workers import default_workers
from bindrop.store import AppConfig, BlobStore, Store

from .hubkit import HANG, HELLO
from .serverkit import installed_machine

pytestmark = pytest.mark.integration

APP_UNIT = "bindrop-app-svc-1.service"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    """A machine with bindrop installed (hub as bindrop.service) running one app, svc."""
    with installed_machine(tmp_path_factory, "svc") as m:
        m.exec("systemctl", "stop", "bindrop.service")  # one writer: config goes in while down
        data = m.layout.private_dir("/var/lib/bindrop")
        blob = BlobStore(data / "blobs" / "sha256").put_file(HELLO, max_size=1 << 20)
        with Store(data / "bindrop.db") as store:
            store.create_app(AppConfig(name="svc", hosts=("svc.test",), current_release=None))
            store.add_release("svc", blob.sha256, blob.size, "binary", [], "tests")
            store.update_app("svc", current_release=1)
        m.exec("systemctl", "start", "bindrop.service")
        wait_active(m, APP_UNIT)
        yield m


def show(m: Machine, unit: str, *props: str) -> dict[str, str]:
    out = m.exec("systemctl", "show", unit, *(f"-p{p}" for p in props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def wait_active(m: Machine, unit: str) -> None:
    proc = m.exec("timeout", str(int(HANG)), "sh", "-c",
                  f"until systemctl is-active -q {unit}; do sleep 0.1; done", check=False)
    assert proc.returncode == 0, f"{unit} did not become active"


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + HANG
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def hub_log(m: Machine) -> str:
    return m.exec("journalctl", "-u", "bindrop.service", "-o", "cat").stdout


def logged(m: Machine, line: str) -> bool:
    """Whether the hub's journal has ``line``, waiting (journald stores a unit's output a
    little after the unit's state changes, later still on a loaded machine)."""
    deadline = time.monotonic() + HANG
    while line not in hub_log(m):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_the_hub_recreates_the_wanted_app_at_start(served: Machine) -> None:
    assert logged(served, "reconcile: recreate svc release 1"), hub_log(served)[-2000:]
    assert show(served, APP_UNIT, "ActiveState")["ActiveState"] == "active"


def test_kill_9_of_the_hub_leaves_the_app_alone_and_the_new_hub_adopts_it(
    served: Machine,
) -> None:
    before = show(served, APP_UNIT, "MainPID", "InvocationID", "NRestarts")
    hub_pid = show(served, "bindrop.service", "MainPID")["MainPID"]
    served.exec("systemctl", "kill", "-s", "KILL", "bindrop.service")
    # Restart=always brings the hub back; wait for a new main PID that is ready.
    served.exec("timeout", str(int(HANG)), "sh", "-c",
                f"until [ \"$(systemctl show -P MainPID bindrop.service)\" != {hub_pid} ] && "
                "systemctl is-active -q bindrop.service; do sleep 0.1; done")
    after = show(served, APP_UNIT, "MainPID", "InvocationID", "NRestarts")
    assert after == before
    assert logged(served, f"reconcile: adopt {APP_UNIT}"), hub_log(served)[-2000:]


def test_sigterm_stops_the_hub_cleanly_and_the_app_keeps_running(served: Machine) -> None:
    before = show(served, APP_UNIT, "MainPID", "InvocationID")
    served.exec("systemctl", "stop", "bindrop.service")
    hub = show(served, "bindrop.service", "Result", "ExecMainStatus", "ActiveState")
    assert hub == {"Result": "success", "ExecMainStatus": "0", "ActiveState": "inactive"}
    assert show(served, APP_UNIT, "MainPID", "InvocationID") == before
    served.exec("systemctl", "start", "bindrop.service")


def test_a_deploy_through_the_cli_is_served_by_the_proxy(served: Machine) -> None:
    """The README's main job, end to end: CLI -> control socket -> hub -> systemd -> proxy."""
    state = served.read_state()
    assert state is not None and state.http_port
    env = {**os.environ, "BINDROP_SERVER": f"unix:{served.control_socket}"}

    def bindrop(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "bindrop", *args], env=env,
                              capture_output=True, text=True, timeout=HANG, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    # The earlier tests restarted the hub; a deploy's flip waits for the proxies that are
    # connected, so first wait until the proxy (retrying every <= 2 s) is back: each of its
    # workers (one per CPU by default) is a proxy of its own to the hub.
    wait_until(lambda: json.loads(served.exec(
        "curl", "-s", "--unix-socket", "/run/bindrop/control.sock",
        "http://hub/v1/server").stdout).get("proxies") == default_workers())
    bindrop("create", "web", "--host", "web.localhost")
    assert "release 1 of web is live" in bindrop("deploy", "web", str(HELLO), "--cmd",
                                                 "--label served")
    request = urllib.request.Request(f"http://127.0.0.1:{state.http_port}/",
                                     headers={"Host": "web.localhost"})
    with urllib.request.urlopen(request, timeout=HANG) as answer:
        assert answer.read().decode().startswith("served from web release 1")
    status = json.loads(bindrop("status", "web", "--json"))
    assert status["live"]["state"] == "running"
    bindrop("destroy", "web", "--yes")


def test_the_control_api_is_reachable_through_the_proxy_with_a_token(served: Machine) -> None:
    """`bindrop machine env`'s BINDROP_REMOTE_URL: the TCP API at the control host, through
    the machine's proxy, as from a laptop. The proxy adds no trust: no token, 401."""

    def bindrop(*args: str, server: str | None = None, check: bool = True
                ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BINDROP_")}
        if server:
            env["BINDROP_SERVER"] = server
        proc = subprocess.run([sys.executable, "-m", "bindrop", *args], env=env,
                              capture_output=True, text=True, timeout=HANG, check=False)
        assert proc.returncode == 0 or not check, proc.stderr
        return proc

    lines = bindrop("machine", "env", "--name", served.name, "--machines-dir",
                    str(served.layout.dir.parent)).stdout.splitlines()
    exports = dict(line.removeprefix("export ").split("=", 1) for line in lines)
    remote_url = exports["BINDROP_REMOTE_URL"]
    http_port = served.running_state().http_port
    assert remote_url == f"http://bindrop.localhost:{http_port}"

    def status_without_token() -> int:
        # urllib asks NSS, which may not know *.localhost: the proxy's port, the URL's Host.
        request = urllib.request.Request(f"http://127.0.0.1:{http_port}/v1/apps",
                                         headers={"Host": remote_url.removeprefix("http://")})
        try:
            with urllib.request.urlopen(request, timeout=HANG) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as refused:
            refused.close()
            return int(refused.code)

    # The earlier tests restarted the hub: wait until the proxy has its table again.
    wait_until(lambda: status_without_token() == 401)
    refused = bindrop("apps", "--json", "--server", remote_url, check=False)
    assert refused.returncode != 0 and "needs a token" in refused.stderr
    token = bindrop("token", "create", "laptop",
                    server=f"unix:{served.control_socket}").stdout.strip()
    listed = bindrop("apps", "--json", "--server", remote_url, "--token", token).stdout
    assert "svc" in [app["name"] for app in json.loads(listed)]
    bindrop("token", "revoke", "laptop", server=f"unix:{served.control_socket}")


def test_a_reboot_brings_the_wanted_app_back(served: Machine) -> None:
    before = show(served, APP_UNIT, "InvocationID")
    served.down()
    served.up(bare=True)  # bindrop is installed already; it starts at boot
    wait_active(served, APP_UNIT)
    assert show(served, APP_UNIT, "InvocationID") != before  # a new unit, recreated
    assert show(served, "bindrop.service", "UnitFileState")["UnitFileState"] == "enabled"
