"""Backups against a real hub, real apps writing SQLite, and a real S3-compatible server."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tarfile
from pathlib import Path

import pytest

from bindrop.api import ApiServer
from bindrop.care.backup import run_backup
from bindrop.care.config import CareSettings
from bindrop.care.local import LocalBackups
from bindrop.care.sqlite_copy import integrity_check
from bindrop.errors import BackupFailed
from bindrop.hub.hub import Hub
from bindrop.machine import Machine
from bindrop.settings import Settings
from bindrop.store import AppConfig, Store

from .carekit import (
    apps_data,
    bindrop,
    care_env,
    deploy_writer,
    ok_json,
    s3_server,
    table_rows,
    wait_for,
)

pytestmark = pytest.mark.integration


async def test_backup_while_the_app_writes_is_consistent_and_restores_exact_rows(
    machine: Machine, settings: Settings, hub: Hub, api: ApiServer, tmp_path: Path
) -> None:
    env = care_env(machine, settings, api)
    await deploy_writer(hub, "busy", "serve")  # writes forever, two rows per transaction
    db = apps_data(machine) / "busy" / "app.db"
    await wait_for(lambda: db.exists() and len(table_rows(db)) > 200)
    made = ok_json(await bindrop(env, "backup", "run", "--json"))
    # A server backup holds every app on the machine (other tests' too).
    assert "busy" in made["apps"] and made["problems"] == []
    ok_json(await bindrop(env, "backup", "verify", made["id"], "--json"))

    part = settings.backups_dir / made["id"] / "app-busy.tar.gz"
    with tarfile.open(part) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "x", filter="data")
    assert "app.db" in names and not any(n.endswith(("-wal", "-shm")) for n in names)
    snapshot = tmp_path / "x" / "app.db"
    assert integrity_check(snapshot) is None
    saved = table_rows(snapshot)
    assert len(saved) % 2 == 0 and len(saved) > 200

    # Stop the writer, change the data, restore: the rows are exactly the snapshot's.
    stopped = ok_json(await bindrop(env, "stop", "busy", "--json"))
    assert stopped
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DELETE FROM t WHERE id > 10")
    conn.close()
    # Restore an app that is stopped: it stays stopped, so the rows are not written on top.
    restored = ok_json(await bindrop(env, "backup", "restore", "busy", "--from", made["id"],
                                     "--json"))
    assert restored == {"app": "busy", "backup": made["id"], "started": False}
    assert table_rows(db) == saved
    assert integrity_check(db) is None

    status = ok_json(await bindrop(env, "status", "--json"))
    assert made["id"] in status["care"]["last_backup"]["message"]
    assert "restored" in status["care"]["last_restore"]["message"]


async def test_restore_refuses_another_apps_backup_and_a_damaged_one(
    machine: Machine, settings: Settings, hub: Hub, api: ApiServer
) -> None:
    env = care_env(machine, settings, api)
    await deploy_writer(hub, "notes", "serve", "--until", "40")
    db = apps_data(machine) / "notes" / "app.db"
    await wait_for(lambda: db.exists() and len(table_rows(db)) == 40)
    notes = ok_json(await bindrop(env, "backup", "run", "notes", "--json"))
    unknown = await bindrop(env, "backup", "restore", "ghost", "--from", notes["id"])
    assert unknown.exit_code == 1 and "ghost" in unknown.output
    hub.store.create_app(AppConfig(name="other", hosts=("other.test",)))
    refused = await bindrop(env, "backup", "restore", "other", "--from", notes["id"])
    assert refused.exit_code == 1 and "of app notes, not other" in refused.output

    part = settings.backups_dir / notes["id"] / "app-notes.tar.gz"
    part.write_bytes(part.read_bytes()[:-10] + b"0123456789")
    damaged = await bindrop(env, "backup", "restore", "notes", "--from", notes["id"])
    assert damaged.exit_code == 1 and "damaged" in damaged.output
    assert (await bindrop(env, "backup", "verify", notes["id"])).exit_code == 1
    # Nothing was touched: the app still runs on its own data.
    assert hub.state.app("notes") is not None
    assert hub.state.app("notes").state == "running"  # type: ignore[union-attr]
    assert len(table_rows(db)) == 40
    status = ok_json(await bindrop(env, "status", "--json"))
    assert "damaged" in status["care"]["last_backup_failure"]["message"]


async def test_backup_uploads_to_s3_and_restores_from_it(
    machine: Machine, settings: Settings, hub: Hub, api: ApiServer
) -> None:
    import boto3

    await deploy_writer(hub, "cloud", "serve", "--until", "20")
    db = apps_data(machine) / "cloud" / "app.db"
    await wait_for(lambda: db.exists() and len(table_rows(db)) == 20)
    with s3_server() as endpoint:
        keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing-secret"}
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     **keys).create_bucket(Bucket="backups")
        env = care_env(machine, settings, api)
        # The bucket is the server's setting: the hub's environment (care.env on a server).
        hub.care_runs.environ.update(
            BINDROP_S3_BUCKET="backups", BINDROP_S3_ENDPOINT=endpoint, BINDROP_S3_PREFIX="srv1",
            BINDROP_S3_ACCESS_KEY_ID=keys["aws_access_key_id"],
            BINDROP_S3_SECRET_ACCESS_KEY=keys["aws_secret_access_key"])
        made = await bindrop(env, "backup", "run", "--json")
        assert "testing-secret" not in made.output
        backup_id = ok_json(made)["id"]
        objects = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                               **keys).list_objects_v2(Bucket="backups", Prefix="srv1/")
        assert f"srv1/{backup_id}/manifest.json" in {o["Key"] for o in objects["Contents"]}

        # The local copy is lost: list and restore use the bucket.
        shutil.rmtree(settings.backups_dir / backup_id)
        listed = ok_json(await bindrop(env, "backup", "list", "cloud", "--json"))
        assert [(b["id"], b["where"]) for b in listed] == [(backup_id, ["s3"])]
        # The app is running: restore stops it, swaps the data in, starts it again.
        db.unlink()
        restored = ok_json(await bindrop(env, "backup", "restore", "cloud", "--json"))
        assert restored["started"] is True
    assert len(table_rows(db)) == 20
    assert hub.state.app("cloud").state == "running"  # type: ignore[union-attr]


async def test_a_full_disk_fails_the_backup_cleanly(tmp_path: Path) -> None:
    """The backup folder is a 512 KiB tmpfs; the app's data does not compress."""
    backups = tmp_path / "backups"
    backups.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(backups)],
                   check=True)
    try:
        settings = Settings(root=tmp_path / "root")
        Store.open(settings).close()
        care = CareSettings(backup_dir=backups, apps_data_dir=tmp_path / "apps")
        (tmp_path / "apps" / "big").mkdir(parents=True)
        (tmp_path / "apps" / "big" / "blob.bin").write_bytes(os.urandom(2 * 1024 * 1024))
        with pytest.raises(BackupFailed, match="is full"):
            run_backup(settings, care)
        assert LocalBackups(backups).list() == []
        assert [p.name for p in backups.iterdir()] == [".lock"]
    finally:
        subprocess.run(["umount", str(backups)], check=True)
