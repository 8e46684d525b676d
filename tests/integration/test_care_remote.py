"""Server care from outside the server: over its socket and over HTTP with a token, the CLI
acts on the server's files (through units its hub starts), never on its own."""

from __future__ import annotations

import sqlite3

import pytest

from bindrop.api import ApiServer
from bindrop.client.client import Client, RemoteError
from bindrop.hub.hub import Hub
from bindrop.machine import Machine
from bindrop.settings import Settings

from .carekit import apps_data, bindrop, deploy_writer, ok_json, table_rows, wait_for

pytestmark = pytest.mark.integration


def http_env(api: ApiServer, token: str) -> dict[str, str]:
    # A root of the CLI's own that holds nothing: anything read locally would be empty.
    return {"BINDROP_SERVER": f"http://127.0.0.1:{api.tcp_port}", "BINDROP_TOKEN": token,
            "BINDROP_ROOT": "/nonexistent-cli-root"}


async def test_backup_list_restore_and_disk_over_http_act_on_the_server(
    machine: Machine, settings: Settings, hub: Hub, api: ApiServer
) -> None:
    admin, _ = hub.config.create_token("laptop", "admin")
    env = http_env(api, admin)
    await deploy_writer(hub, "store", "serve", "--until", "30")
    db = apps_data(machine) / "store" / "app.db"
    await wait_for(lambda: db.exists() and len(table_rows(db)) == 30)
    saved = table_rows(db)

    made = ok_json(await bindrop(env, "backup", "run", "store", "--json"))
    assert made["apps"] == ["store"] and (settings.backups_dir / made["id"]).is_dir()
    listed = ok_json(await bindrop(env, "backup", "list", "--json"))
    assert [(b["id"], b["where"]) for b in listed] == [(made["id"], ["local"])]
    shown = ok_json(await bindrop(env, "backup", "show", made["id"], "--json"))
    assert [p["name"] for p in shown["parts"]] == ["app-store.tar.gz"]
    assert shown["parts"][0]["databases"] == ["app.db"]

    # The app runs on: the restore stops it, swaps the rows back in, and starts it again.
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DELETE FROM t WHERE id > 5")
    conn.close()
    restored = ok_json(await bindrop(env, "backup", "restore", "store", "--json"))
    assert restored == {"app": "store", "backup": made["id"], "started": True}
    assert table_rows(db)[:30] == saved
    assert hub.state.app("store").state == "running"  # type: ignore[union-attr]

    shown_disk = ok_json(await bindrop(env, "disk", "--json"))
    assert shown_disk["parts"]["blobs"] > 0 and shown_disk["parts"]["database"] > 0
    assert "store" in shown_disk["apps"] and shown_disk["apps"]["store"] > 0
    text = await bindrop(env, "disk")
    assert text.exit_code == 0 and "app store" in text.output

    kinds = [e.kind for e in hub.store.list_events()]
    assert "backup_succeeded" in kinds and "backup_restored" in kinds
    # Each step ran as its own unit, its output in the journal.
    journal = machine.exec("journalctl", "BINDROP_CARE=backup", "--no-pager").stdout
    assert made["id"] in journal


async def test_a_read_only_token_lists_but_cannot_run_restore_or_collect(
    settings: Settings, hub: Hub, api: ApiServer
) -> None:
    reader, _ = hub.config.create_token("phone", "read-only")
    env = http_env(api, reader)
    assert ok_json(await bindrop(env, "backup", "list", "--json")) == []
    for args in (("backup", "run"), ("backup", "restore", "x"), ("gc",),
                 ("backup", "verify", "20261128T031500.000Z-server")):
        refused = await bindrop(env, *args)
        assert refused.exit_code == 1 and "read-only" in refused.output, args
    assert not settings.backups_dir.exists() or not any(settings.backups_dir.iterdir())
    unauthenticated = await bindrop(http_env(api, "bd_wrong"), "backup", "list")
    assert unauthenticated.exit_code == 1


async def test_one_care_run_at_a_time_a_second_is_refused_or_queued(
    settings: Settings, hub: Hub, api: ApiServer
) -> None:
    async with Client(f"unix:{api.socket_path}") as client:
        first = await client.start_backup()
        assert first["state"] == "running"
        with pytest.raises(RemoteError) as refused:
            await client.gc()
        assert refused.value.status == 409 and "backup is running" in refused.value.message
        queued = await client.gc(dry_run=True, queue=True, wait=True)
        assert queued["state"] == "succeeded" and queued["result"]["dry_run"] is True
        done = await client.care_run(first["id"])
        assert done["state"] == "succeeded" and done["units"][0].startswith(
            "bindrop-care-backup-")
        runs = await client.care_runs()
        assert runs["current"] is None
        assert [r["id"] for r in runs["runs"][:2]] == [queued["id"], first["id"]]


async def test_verify_of_a_damaged_backup_fails_with_what_is_wrong(
    settings: Settings, hub: Hub, api: ApiServer
) -> None:
    env = {"BINDROP_SERVER": f"unix:{api.socket_path}", "BINDROP_TOKEN": ""}
    made = ok_json(await bindrop(env, "backup", "run", "--json"))
    assert ok_json(await bindrop(env, "backup", "verify", made["id"], "--json"))["ok"] is True
    part = settings.backups_dir / made["id"] / "bindrop.tar.gz"
    part.write_bytes(part.read_bytes()[:-4] + b"oops")
    damaged = await bindrop(env, "backup", "verify", made["id"])
    assert damaged.exit_code == 1 and "sha256" in damaged.output
    missing = await bindrop(env, "backup", "verify", "20200101T000000.000Z-server")
    assert missing.exit_code == 1 and "no local backup" in missing.output


async def test_a_restore_asked_for_during_a_deploy_waits_its_turn(
    hub: Hub, api: ApiServer
) -> None:
    from bindrop.hub.commands import Deploy
    from bindrop.store import AppConfig

    from .hubkit import HELLO

    hub.store.create_app(AppConfig(name="turns", hosts=("turns.test",)))
    blob = hub.blobs.put_file(HELLO, max_size=1 << 20)
    hub.store.add_release("turns", blob.sha256, blob.size, "binary", [], "tests")
    await hub.call("turns", Deploy(1))
    async with Client(f"unix:{api.socket_path}") as client:
        made = await client.start_backup("turns", wait=True)
        assert made["state"] == "succeeded", made
        hub.store.add_release("turns", blob.sha256, blob.size, "binary",
                              ["--listen-after", "3"], "tests")
        deploying = hub.submit("turns", Deploy(2))
        restored = await client.restore("turns", wait=True)
        assert deploying.done()
    assert restored["state"] == "succeeded", restored
    assert restored["result"]["started"] is True and restored["result"]["release"] == "2"
    events = hub.store.list_events("turns")
    second = next(e.id for e in events if e.kind == "deploy_succeeded"
                  and (e.data or {}).get("release") == 2)
    assert second < next(e.id for e in events if e.kind == "backup_restored")


async def test_a_full_disk_during_a_backup_leaves_nothing_and_is_reported(
    machine: Machine, settings: Settings, hub: Hub, api: ApiServer
) -> None:
    import os

    await deploy_writer(hub, "big", "serve", "--until", "2")
    data = apps_data(machine) / "big"
    await wait_for(lambda: (data / "app.db").exists())
    (data / "noise.bin").write_bytes(os.urandom(2 * 1024 * 1024))  # does not compress
    tiny = settings.root / "tiny-backups"
    tiny.mkdir()
    # Mounted inside the machine, where the care unit runs: a 512 KiB backup disk.
    machine.exec("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(tiny))
    hub.care_runs.environ["BINDROP_BACKUP_DIR"] = str(tiny)
    try:
        env = {"BINDROP_SERVER": f"unix:{api.socket_path}", "BINDROP_TOKEN": ""}
        failed = await bindrop(env, "backup", "run", "big")
        assert failed.exit_code == 1 and "is full" in failed.output
        assert ok_json(await bindrop(env, "backup", "list", "--json")) == []
        left = machine.exec("ls", "-A", str(tiny)).stdout.split()
        assert left == [".lock"]
    finally:
        machine.exec("umount", str(tiny))
    event = hub.store.last_event_of(["backup_failed"])
    assert event is not None and event.app == "big" and "is full" in event.message
