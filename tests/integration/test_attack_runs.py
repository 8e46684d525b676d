"""Process types, release commands and one-off runs as an attacker (or a broken release)
would use them, against a real hub on the private systemd."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bindrop.api import ApiServer
from bindrop.client.client import Client
from bindrop.errors import InvalidInput, NotReady
from bindrop.hub.commands import Deploy, Stop
from bindrop.hub.hub import Hub
from bindrop.machine import Machine
from bindrop.settings import Settings
from bindrop.store import AppConfig, BlobStore, Store

from .hubkit import HELLO
from .test_processes import active_units, bundle, upload

pytestmark = pytest.mark.integration

RELEASE_TIMEOUT_S = 4.0
ENDLESS = "#!/bin/sh\necho 'migration: waiting for a lock'\nexec sleep 100000\n"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, release_timeout_s=RELEASE_TIMEOUT_S)


async def test_a_release_command_that_never_ends_is_stopped_and_the_app_can_act_again(
        hub: Hub, store: Store, blobs: BlobStore, machine: Machine, tmp_path: Path) -> None:
    store.create_app(AppConfig(name="stuck", hosts=("stuck.test",)))
    good = await upload(hub, "stuck", bundle(tmp_path, "one"))
    await hub.call("stuck", Deploy(good.number))
    bad = await upload(hub, "stuck", bundle(tmp_path, "two", ENDLESS))
    started = time.monotonic()
    with pytest.raises(NotReady) as failed:
        async with asyncio.timeout(RELEASE_TIMEOUT_S + 60):
            await hub.call("stuck", Deploy(bad.number))
    assert time.monotonic() - started < RELEASE_TIMEOUT_S + 60
    assert "waiting for a lock" in failed.value.message
    assert "time" in failed.value.message, failed.value.message  # says it ran out of time
    # The old release serves; nothing of the release command is left; the actor is free.
    assert store.get_app("stuck").current_release == good.number
    assert not [u for u in active_units(machine, "stuck") if "_release" in u]
    async with asyncio.timeout(60):
        await hub.call("stuck", Stop())


async def run_lines(api: ApiServer, token: str, app: str, body: object) -> tuple[int, list[Any]]:
    async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{api.tcp_port}/v1/apps/{app}/run", data=json.dumps(body),
            headers={"Authorization": f"Bearer {token}",
                     "Content-Type": "application/json"}) as response:
        text = await response.text()
    if response.status != 200:
        return response.status, [json.loads(text)]
    return response.status, [json.loads(line) for line in text.splitlines()]


@pytest.fixture
async def deployed(api: ApiServer, hub: Hub) -> str:
    """An admin token over TCP, with the app ``tool`` deployed and X set."""
    async with Client(f"unix:{api.socket_path}") as admin:
        await admin.create_app({"name": "tool", "hosts": ["tool.test"]})
        release = await admin.upload_release("tool", HELLO)
        await hub.call("tool", Deploy(release["number"]))
        await admin.set_env("tool", {"X": "from-env"})
        return str((await admin.create_token("ops"))["token"])


async def test_run_arguments_reach_the_command_verbatim_never_expanded_by_systemd(
        api: ApiServer, hub: Hub, deployed: str) -> None:
    tricky = ["$X", "${X}", "$$X", "%h %u %n %%", "a\nExecStartPre=/bin/false", "'\"\\",
              "--property=User=root", ";", "-", ""]
    status, lines = await run_lines(api, deployed, "tool", {
        "args": ["sh", "-c", 'for a in "$@"; do printf "<%s>\\n" "$a"; done; echo "X=$X"',
                 "sh", *tricky]})
    assert status == 200, lines
    messages = "\n".join(line["message"] for line in lines if "message" in line)
    expected = "\n".join(f"<{a}>" for a in tricky) + "\nX=from-env"
    assert messages == expected
    assert lines[-1] == {"exit_status": 0}


async def test_a_run_whose_caller_goes_away_is_stopped_and_leaves_no_unit(
        api: ApiServer, hub: Hub, machine: Machine, deployed: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{api.tcp_port}/v1/apps/tool/run",
            data=json.dumps({"args": ["sh", "-c", "echo started; exec sleep 100000"]}),
            headers={"Authorization": f"Bearer {deployed}"}) as response:
        first = json.loads(await response.content.readline())
        unit = first["unit"]
        assert unit.startswith("bindrop-app-tool-") and "_run." in unit
        assert json.loads(await response.content.readline()) == {"message": "started"}
        response.close()  # the caller goes away mid-run
    async with asyncio.timeout(60):
        while True:
            listed = machine.exec("systemctl", "list-units", "--all", "--plain", "--no-legend",
                                  unit).stdout
            if unit not in listed:
                break
            await asyncio.sleep(0.2)
    assert not [u for u in active_units(machine, "tool") if "_run." in u]


@pytest.mark.parametrize("body", [
    {"args": []}, {"args": "sh -c id"}, {"args": [1, 2]}, {"args": ["sh", None]},
    {"args": ["a\x00b"]}, {"args": ["x"] * 1000}, {"args": ["../../../bin/sh"]},
    {"args": ["sh"], "detach": "yes"}, {"args": ["sh"], "user": "root"}, {},
])
async def test_a_bad_run_is_refused_with_400_and_starts_nothing(
        api: ApiServer, hub: Hub, machine: Machine, deployed: str, body: object) -> None:
    status, lines = await run_lines(api, deployed, "tool", body)
    assert status == 400, lines
    assert not [u for u in active_units(machine, "tool") if "_run." in u]


@pytest.mark.parametrize("counts", [
    {"web": -1}, {"web": 17}, {"web": 10**30}, {"web": 1.5}, {"web": "2"}, {"web": True},
    {"web": None}, {"nope": 1}, {"release": 1}, {"../x": 1}, {"web;id": 1}, {"Web": 1},
    {"w" * 16: 1}, {},
])
async def test_a_scale_out_of_bounds_is_refused_with_400_and_changes_nothing(
        api: ApiServer, hub: Hub, store: Store, machine: Machine, deployed: str,
        counts: object) -> None:
    before = (store.get_processes("tool"), active_units(machine, "tool"))
    async with aiohttp.ClientSession() as session, session.put(
            f"http://127.0.0.1:{api.tcp_port}/v1/apps/tool/scale",
            data=json.dumps({"counts": counts}),
            headers={"Authorization": f"Bearer {deployed}"}) as response:
        answer = await response.json()
    assert response.status == 400, answer
    assert (store.get_processes("tool"), active_units(machine, "tool")) == before


def tar_gz(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o755
          ) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    return info


SERVER = (entry("server"), b"#!/bin/sh\nexec sleep 100000\n")
PROCFILE = (entry("Procfile", mode=0o644), b"web: ./server\n")


def procfile(text: str) -> tuple[tarfile.TarInfo, bytes]:
    return entry("Procfile", mode=0o644), text.encode()


EVIL_BUNDLES = {
    "dot-dot path": tar_gz(SERVER, PROCFILE, (entry("../../etc/cron.d/x"), b"* * * * * root id\n")),
    "absolute path": tar_gz(SERVER, PROCFILE, (entry("/etc/x"), b"x")),
    "symlink out": tar_gz(SERVER, PROCFILE, (entry("etc", tarfile.SYMTYPE, "../../../etc"), None)),
    "absolute symlink": tar_gz(SERVER, PROCFILE, (entry("e", tarfile.SYMTYPE, "/etc"), None)),
    "hard link out": tar_gz(SERVER, PROCFILE, (entry("p", tarfile.LNKTYPE, "../../etc/passwd"),
                                               None)),
    "write through a symlink": tar_gz(SERVER, PROCFILE, (entry("d", tarfile.SYMTYPE, "."), None),
                                      (entry("d/../../x"), b"x")),
    "device": tar_gz(SERVER, PROCFILE, (entry("null", tarfile.CHRTYPE), None)),
    "fifo": tar_gz(SERVER, PROCFILE, (entry("pipe", tarfile.FIFOTYPE), None)),
    "Procfile symlink": tar_gz(SERVER, (entry("Procfile", tarfile.SYMTYPE, "server"), None)),
    "Procfile directory": tar_gz(SERVER, (entry("Procfile", tarfile.DIRTYPE), None)),
    "huge Procfile": tar_gz(SERVER, procfile("# pad\n" * 20000 + "web: ./server\n")),
    "shell in a name": tar_gz(SERVER, procfile("web: ./server\nx;id: ./server\n")),
    "unit-name chars": tar_gz(SERVER, procfile("web: ./server\nw_1: ./server\n")),
    "dash in a name": tar_gz(SERVER, procfile("web: ./server\nw-x: ./server\n")),
    "dots in a name": tar_gz(SERVER, procfile("web: ./server\n..: ./server\n")),
    "upper case": tar_gz(SERVER, procfile("Web: ./server\n")),
    "twice": tar_gz(SERVER, procfile("web: ./server\nweb: ./server\n")),
    "too many": tar_gz(SERVER, procfile("".join(f"p{i}: ./server\n" for i in range(17)))),
    "no command": tar_gz(SERVER, procfile("web:\n")),
    "bad quoting": tar_gz(SERVER, procfile("web: ./server 'oops\n")),
    "not UTF-8": tar_gz(SERVER, (entry("Procfile", mode=0o644), b"web: ./server \xff\n")),
}


@pytest.mark.parametrize("name", EVIL_BUNDLES)
async def test_a_malicious_bundle_is_refused_and_leaves_no_release_blob_or_file(
        hub: Hub, store: Store, blobs: BlobStore, settings: Settings, name: str) -> None:
    store.create_app(AppConfig(name="evil", hosts=("evil.test",)))
    bundles = settings.state_dir / "bundles"
    with pytest.raises(InvalidInput):
        await upload(hub, "evil", EVIL_BUNDLES[name])
    assert store.list_releases("evil") == []
    assert [p for p in settings.blobs_dir.rglob("*") if p.is_file()] == []
    assert not Path("/etc/x").exists() and not (settings.state_dir.parent / "x").exists()
    # An unsafe archive leaves no unpacked tree nor temp dir; one with a bad Procfile may
    # leave its (read-only, content-addressed) tree, collected by gc as its blob is gone.
    after = sorted(p.name for p in bundles.iterdir()) if bundles.is_dir() else []
    assert not [p for p in after if p.startswith(".unpack-")]


FORGE = ("import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
         "s.sendto(b'MESSAGE=forged: your database was dropped\\nBINDROP_APP=tool\\n"
         "BINDROP_PROCESS=web\\n', '/run/systemd/journal/socket'); print('sent')")


async def test_another_app_cannot_forge_lines_into_an_app_s_logs(
        api: ApiServer, hub: Hub, deployed: str) -> None:
    async with Client(f"unix:{api.socket_path}") as admin:
        await admin.create_app({"name": "mallory", "hosts": ["mallory.test"]})
        release = await admin.upload_release("mallory", HELLO)
    await hub.call("mallory", Deploy(release["number"]))
    status, lines = await run_lines(api, deployed, "mallory",
                                    {"args": ["python3", "-c", FORGE]})
    assert status == 200 and {"message": "sent"} in lines, lines
    await asyncio.sleep(1)  # journald has it
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{api.tcp_port}/v1/apps/tool/logs", params={"lines": "500"},
            headers={"Authorization": f"Bearer {deployed}"}) as response:
        entries = [json.loads(line) for line in (await response.text()).splitlines()]
    assert response.status == 200
    assert entries, "the app's own lines are shown"
    assert not [e for e in entries if "forged" in e["message"]], entries
    assert all(e["unit"].startswith("bindrop-app-tool-") for e in entries), entries
    # Nor into the lines recorded when systemd gives up on the app.
    tail = await hub.journal.tail_app("tool", 50)
    assert tail and not [line for line in tail if "forged" in line], tail


async def test_process_types_added_at_upload_are_bounded_like_a_procfile_s(
        api: ApiServer, hub: Hub, store: Store, deployed: str) -> None:
    many = {f"p{i}": ["--x"] for i in range(40)}
    async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{api.tcp_port}/v1/apps/tool/releases",
            params={"processes": json.dumps(many)}, data=HELLO.read_bytes(),
            headers={"Authorization": f"Bearer {deployed}"}) as response:
        answer = await response.json()
    assert response.status == 400, answer
    assert "16" in answer["error"]["message"]
    assert [r.number for r in store.list_releases("tool")] == [1]
