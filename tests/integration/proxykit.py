"""The proxy as `bindrop install` runs it, in a machine, with a hub end of the test's own:
shared by the tests of the proxy's units and of its edge."""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

from bindrop.machine import Machine
from bindrop.proxy.listen import bind_socket
from bindrop.serve.install import deploy_dir, render_installed_unit
from bindrop.settings import Settings
from bindrop.store import AppConfig, Store
from tests.proxy import kit
from tests.proxy.kit import HubEnd

UNITS = ("bindrop-proxy.socket", "bindrop-proxy.service")


def free_port() -> int:
    with bind_socket("127.0.0.1", 0) as sock:
        port: int = sock.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def running_hub_end(settings: Settings, *apps: str) -> AsyncIterator[HubEnd]:
    """The hub's end of the proxy link on the test root's control socket, routing the apps
    of the root's store; ``apps`` are created in it first, each at APP.test."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with Store.open(settings) as store:
        for app in apps:
            store.create_app(AppConfig(name=app, hosts=(f"{app}.test",)))
        async with kit.running_hub_end(store, settings.control_socket) as end:
            yield end


@contextlib.contextmanager
def installed_proxy(machine: Machine, settings: Settings, port: int,
                    environment: Mapping[str, str] = {}) -> Iterator[int]:
    """The proxy's units from bindrop/deploy/ in the machine, as install renders them,
    listening on ``port`` (a drop-in), its hub socket and snapshot under the test's root and
    ``environment`` added to the service. Removed again afterwards."""
    unit_dir = machine.layout.private_dir("/etc/systemd/system")
    command = f"{shlex.quote(sys.executable)} -m bindrop"
    written: list[Path] = []
    for name in UNITS:
        path = unit_dir / name
        path.write_text(render_installed_unit((deploy_dir() / name).read_text(), command,
                                              https_port=None))
        written.append(path)
    env = {"BINDROP_ROOT": str(settings.root),
           "BINDROP_PROXY_HUB_SOCKET": str(settings.control_socket), **environment}
    drop_ins = {
        "bindrop-proxy.socket.d": f"[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n",
        "bindrop-proxy.service.d": "[Service]\n" + "".join(
            f"Environment={key}={value}\n" for key, value in env.items()),
    }
    for folder, text in drop_ins.items():
        (unit_dir / folder).mkdir(exist_ok=True)
        (unit_dir / folder / "test.conf").write_text(text)
        written.append(unit_dir / folder / "test.conf")
    machine.exec("systemctl", "daemon-reload")
    machine.exec("systemctl", "start", "bindrop-proxy.socket")
    try:
        yield port
    finally:
        machine.exec("systemctl", "stop", *UNITS, check=False)
        machine.exec("systemctl", "reset-failed", *UNITS, check=False)
        for path in written:
            path.unlink()
        for folder in drop_ins:
            (unit_dir / folder).rmdir()
        machine.exec("systemctl", "daemon-reload")
