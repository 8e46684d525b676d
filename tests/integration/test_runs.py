"""One-off runs and process scaling from the CLI (issue 17), against a real API and systemd:
over the unix socket and over TCP with a token."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import sys

import pytest

from bindrop.api import ApiServer
from bindrop.hub.hub import Hub

from .hubkit import HELLO
from .test_cli import bindrop, parsed

pytestmark = pytest.mark.integration


async def test_run_prints_the_output_and_exits_with_the_command_s_status(
        api: ApiServer, hub: Hub) -> None:
    assert (await bindrop(api, "create", "tool", "--host", "tool.test")).exit_code == 0
    none = await bindrop(api, "run", "tool", "--", "true")
    assert none.exit_code != 0 and "no release" in none.output  # nothing to run with yet
    assert (await bindrop(api, "deploy", "tool", str(HELLO))).exit_code == 0
    assert (await bindrop(api, "env", "set", "tool", "X=forty two")).exit_code == 0
    result = await bindrop(api, "run", "tool", "--", "sh", "-c",
                           'echo "x is $X"; echo "in $PWD as $(id -un)"; exit 3')
    assert result.exit_code == 3, result.output
    assert "x is forty two" in result.stdout
    assert "/bindrop/apps/tool as bindrop-tool" in result.stdout
    token = (await bindrop(api, "token", "create", "ci")).stdout.strip()
    over_tcp = await bindrop(api, "run", "tool", "--json", "--", "sh", "-c", "echo over tcp",
                             tcp_token=token)
    lines = [json.loads(line) for line in over_tcp.stdout.splitlines()]
    assert over_tcp.exit_code == 0
    assert {"message": "over tcp"} in lines and lines[-1] == {"exit_status": 0}
    detached = await bindrop(api, "run", "tool", "--detach", "--", "sleep", "30")
    unit = detached.stdout.strip()
    assert detached.exit_code == 0 and unit.startswith("bindrop-app-tool-1_run.")
    assert any(u == unit for u in hub.state.snapshot().units)
    second = (await bindrop(api, "run", "tool", "--detach", "--", "sleep", "30")).stdout.strip()
    await hub.runs.finish(unit)
    # No run is left loaded, and none counts as an instance of the app.
    view = hub.state.app("tool")
    assert view is not None and [r.unit for r in view.instances] == [
        "bindrop-app-tool-1.1.service"]  # the env change restarted it
    # destroying the app stops its runs too
    destroyed = parsed(await bindrop(api, "destroy", "tool", "--yes", "--json"))
    assert isinstance(destroyed, dict) and second in destroyed["stopped"]


async def test_scale_from_the_cli_shows_and_changes_processes(api: ApiServer) -> None:
    assert (await bindrop(api, "create", "duo", "--host", "duo.test")).exit_code == 0
    deployed = await bindrop(api, "deploy", "duo", str(HELLO), "--process",
                             "worker=--label worker", "--json")
    assert deployed.exit_code == 0, deployed.output
    shown = parsed(await bindrop(api, "scale", "duo", "--json"))
    assert isinstance(shown, dict)
    assert [(p["name"], p["count"]) for p in shown["processes"]] == [("web", 1),
                                                                     ("worker", 1)]
    too_many = await bindrop(api, "scale", "duo", "web=17")
    assert too_many.exit_code != 0 and "above the limit of 16" in too_many.output
    scaled = parsed(await bindrop(api, "scale", "duo", "web=2", "worker=0", "--json"))
    assert isinstance(scaled, dict) and "web=2" in scaled["message"]
    status = parsed(await bindrop(api, "status", "duo", "--json"))
    assert isinstance(status, dict)
    assert sorted(i["unit"] for i in status["live"]["instances"]) == [
        "bindrop-app-duo-1.service", "bindrop-app-duo-1_web_2.service"]
    logs = await bindrop(api, "logs", "duo", "--process", "web", "-n", "50", "--json")
    assert logs.exit_code == 0
    assert {json.loads(x)["process"] for x in logs.stdout.splitlines()} <= {"web"}


async def _on_a_terminal(argv: list[str], env: dict[str, str], typed: bytes,
                         timeout: float = 60.0) -> tuple[int, str]:
    """Run ``argv`` on a new pseudo-terminal, type ``typed`` once it shows "ready"; its exit
    status and everything it showed."""
    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(*argv, stdin=slave, stdout=slave,
                                                stderr=slave, env=env,
                                                start_new_session=True)
    os.close(slave)
    loop = asyncio.get_running_loop()
    shown = bytearray()
    got: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(master, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(master)
        got.put_nowait(data)

    loop.add_reader(master, readable)
    try:
        async with asyncio.timeout(timeout):
            while b"ready" not in shown:
                chunk = await got.get()
                if not chunk:
                    break
                shown += chunk
            os.write(master, typed)
            while chunk := await got.get():  # b"": the terminal's last user closed it
                shown += chunk
            await proc.wait()
    except TimeoutError:
        pass  # what it showed tells why
    finally:
        loop.remove_reader(master)
        os.close(master)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode if proc.returncode is not None else -1, shown.decode(
        errors="replace")


async def test_run_tty_on_the_server_reads_the_terminal_and_exits_with_the_status(
        api: ApiServer, hub: Hub) -> None:
    assert (await bindrop(api, "create", "term", "--host", "term.test")).exit_code == 0
    assert (await bindrop(api, "deploy", "term", str(HELLO))).exit_code == 0
    assert (await bindrop(api, "env", "set", "term", "X=$HOME stays")).exit_code == 0
    status, shown = await _on_a_terminal(
        [sys.executable, "-m", "bindrop", "run", "--tty", "--server",
         f"unix:{api.socket_path}", "term", "--", "sh", "-c",
         'test -t 0 && echo ready; read line; echo "got $line with $X"; echo bye; exit 4'],
        {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}, b"typed words\n")
    assert "got typed words with $HOME stays" in shown, shown
    assert status == 4, shown
