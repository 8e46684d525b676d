"""The SSH transport against a real sshd on 127.0.0.1: deploy and list apps through it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bindrop.api import ApiServer
from bindrop.cli.main import cli
from bindrop.client.client import Client, RemoteError
from bindrop.settings import Settings

from .hubkit import HANG, HELLO, http_get

pytestmark = pytest.mark.integration

SSHD = Path("/usr/sbin/sshd")
REMOTE = [sys.executable, "-m", "bindrop"]


@dataclass(frozen=True)
class Sshd:
    port: int
    ssh: list[str]  # the ssh command a client runs, with our key and no host-key prompts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A private sshd on 127.0.0.1 that lets root in with a key made here."""
    if not SSHD.exists() or not shutil.which("ssh") or os.geteuid() != 0:
        reason = "needs root, sshd and ssh (apt-get install openssh-server openssh-client)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    d = tmp_path_factory.mktemp("sshd")
    for key in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)],
                       check=True)
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\n"
        f"UsePAM no\nPidFile {d / 'sshd.pid'}\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    with open(d / "sshd.log", "wb") as log:
        proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(d / "sshd_config")],
                                stderr=log)
    try:
        deadline = HANG
        while deadline > 0:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None:
                pytest.fail(f"sshd did not start: {(d / 'sshd.log').read_text()}")
            deadline -= 0.05
            time.sleep(0.05)
        yield Sshd(port, ["ssh", "-i", str(d / "client"), "-o", "StrictHostKeyChecking=no",
                          "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def ssh_url(sshd: Sshd, api: ApiServer) -> str:
    return f"ssh://root@127.0.0.1:{sshd.port}{api.socket_path}"


async def test_deploy_and_list_apps_over_ssh(sshd: Sshd, api: ApiServer) -> None:
    async with Client(ssh_url(sshd, api), ssh=sshd.ssh, remote=REMOTE) as client:
        await client.create_app({"name": "tunneled", "hosts": ["tunneled.test"]})
        release = await client.upload_release("tunneled", HELLO, command=["--label", "ssh"])
        outcome = await client.deploy("tunneled", release["number"])
        status, body = await http_get(outcome["port"])
        assert status == 200 and body.startswith("ssh from tunneled release 1")
        assert [a["name"] for a in await client.apps()] == ["tunneled"]
        assert (await client.releases("tunneled"))[0]["created_by"] == "root"
        await client.action("tunneled", "stop")


async def test_the_cli_lists_apps_over_ssh(sshd: Sshd, api: ApiServer) -> None:
    env = {"BINDROP_SERVER": ssh_url(sshd, api), "BINDROP_SSH": " ".join(sshd.ssh),
           "BINDROP_REMOTE_COMMAND": " ".join(REMOTE)}
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["apps", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "[]"


async def test_an_ssh_login_that_fails_is_a_one_line_unreachable(
    sshd: Sshd, api: ApiServer
) -> None:
    wrong_key = [*sshd.ssh[:2], "/nonexistent-key", *sshd.ssh[3:]]
    async with Client(ssh_url(sshd, api), ssh=wrong_key, remote=REMOTE) as client:
        with pytest.raises(RemoteError) as refused:
            await client.apps()
    assert refused.value.code == "unreachable"


async def test_a_backup_runs_and_lists_on_the_server_over_ssh(
    sshd: Sshd, settings: Settings, api: ApiServer
) -> None:
    env = {"BINDROP_SERVER": ssh_url(sshd, api), "BINDROP_SSH": " ".join(sshd.ssh),
           "BINDROP_REMOTE_COMMAND": " ".join(REMOTE), "BINDROP_ROOT": "/nonexistent"}

    def run(*args: str) -> Any:
        result = CliRunner().invoke(cli, list(args), env=env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    made = await asyncio.to_thread(run, "backup", "run", "--json")
    assert (settings.backups_dir / made["id"] / "manifest.json").is_file()
    listed = await asyncio.to_thread(run, "backup", "list", "--json")
    assert [b["id"] for b in listed] == [made["id"]]


async def test_a_one_off_run_streams_its_output_and_exit_status_over_ssh(
        sshd: Sshd, api: ApiServer) -> None:
    async with Client(ssh_url(sshd, api), ssh=sshd.ssh, remote=REMOTE) as client:
        await client.create_app({"name": "remote", "hosts": ["remote.test"]})
        release = await client.upload_release("remote", HELLO)
        await client.deploy("remote", release["number"])
        await client.set_env("remote", {"X": "over ssh"})
        items = [item async for item in client.run(
            "remote", ["sh", "-c", 'echo "one $X"; sleep 0.3; echo two; exit 5'])]
        await client.action("remote", "stop")
    assert items[0]["unit"].startswith("bindrop-app-remote-1")
    assert [i["message"] for i in items if "message" in i] == ["one over ssh", "two"]
    assert items[-1] == {"exit_status": 5}


async def test_an_interactive_run_over_ssh_reads_the_terminal_and_exits_with_the_status(
        sshd: Sshd, api: ApiServer) -> None:
    from .test_runs import _on_a_terminal

    async with Client(ssh_url(sshd, api), ssh=sshd.ssh, remote=REMOTE) as client:
        await client.create_app({"name": "console", "hosts": ["console.test"]})
        release = await client.upload_release("console", HELLO)
        await client.deploy("console", release["number"])
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "BINDROP_SSH": " ".join(sshd.ssh), "BINDROP_REMOTE_COMMAND": " ".join(REMOTE)}
    status, shown = await _on_a_terminal(
        [sys.executable, "-m", "bindrop", "run", "--tty", "--server", ssh_url(sshd, api),
         "console", "--", "sh", "-c",
         'test -t 0 && echo ready; read line; echo "got $line as $(id -un)"; exit 6'],
        env, b"over the wire\n")
    assert "got over the wire as bindrop-console" in shown, shown
    assert status == 6, shown
    async with Client(ssh_url(sshd, api), ssh=sshd.ssh, remote=REMOTE) as client:
        await client.action("console", "stop")


async def test_a_server_without_bindrop_on_the_ssh_path_says_how_to_name_it(
        sshd: Sshd, api: ApiServer) -> None:
    async with Client(ssh_url(sshd, api), ssh=sshd.ssh, remote=["bindrop-not-here"]) as client:
        with pytest.raises(RemoteError) as refused:
            await client.apps()
    assert refused.value.code == "unreachable"
    assert "BINDROP_REMOTE_COMMAND" in refused.value.message
