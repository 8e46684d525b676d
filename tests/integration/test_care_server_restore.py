"""Restoring bindrop's own database on a server as `bindrop install` leaves it: the hub (its
bindrop.service) stops, the database is swapped after its checks, the hub starts again and
re-attaches to the apps that ran, which were never stopped."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from bindrop.cli.main import cli
from bindrop.client.client import Client, RemoteError
from bindrop.machine import Machine

from .hubkit import HELLO
from .serverkit import installed_machine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server_machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    with installed_machine(tmp_path_factory, "dbr") as m:
        yield m


async def test_the_servers_database_is_restored_and_the_hub_reattaches(
    server_machine: Machine,
) -> None:
    socket = f"unix:{server_machine.control_socket}"
    async with Client(socket) as client:
        await client.create_app({"name": "kept", "hosts": ["kept.localhost"]})
        release = await client.upload_release("kept", HELLO)
        deployed = await client.deploy("kept", release["number"])
        before = (await client.status("kept"))["live"]
        made = await client.start_backup(wait=True)
        assert made["state"] == "succeeded", made
        backup_id = made["result"]["id"]
        app_backup = await client.start_backup("kept", wait=True)
        await client.create_app({"name": "later", "hosts": ["later.localhost"]})
        newer = (await client.create_token("newer"))["token"]
        # An app's backup holds no database of bindrop: refused, nothing stops.
        with pytest.raises(RemoteError) as refused:
            await client.restore_server(app_backup["result"]["id"])
        assert refused.value.status == 400

    env = {"BINDROP_SERVER": socket, "BINDROP_TOKEN": ""}

    def restore(*args: str) -> Any:
        return CliRunner().invoke(cli, ["backup", "restore-server", *args], env=env)

    missing = await asyncio.to_thread(restore, "--from", "20200101T000000.000Z-server", "--yes")
    assert missing.exit_code == 1 and "no local backup" in missing.output
    done = await asyncio.to_thread(restore, "--from", backup_id, "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["backup"] == backup_id

    async with Client(socket) as client:
        assert [a["name"] for a in await client.apps()] == ["kept"]  # "later" came after
        after = (await client.status("kept"))["live"]
        # Re-attached, not restarted: the same unit and process serve.
        assert after["state"] == "running"
        assert (after["unit"], after["main_pid"]) == (before["unit"], before["main_pid"])
        assert after["unit"] == deployed["unit"]
        assert "newer" in [t["name"] for t in await client.tokens()]  # this server's kept
        events = await client.history(limit=10)
        assert "server_restored" in [e["kind"] for e in events]
    async with Client(socket, newer) as client:  # a token made after the backup still works
        assert await client.whoami()
