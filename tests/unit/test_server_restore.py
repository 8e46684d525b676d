"""A whole server rebuilt from a server backup (#16), without a bucket: the backup carries
/etc/bindrop and the blobs; the restore checks everything before it changes anything."""

from __future__ import annotations

import json
import sqlite3
import tarfile
from pathlib import Path

import pytest

from bindrop.care.backup import run_backup
from bindrop.care.config import CareSettings
from bindrop.care.manifest import MANIFEST, file_digest, parse_manifest
from bindrop.care.server_part import BLOBS_LIST, SERVER_PART, parse_blobs_list
from bindrop.errors import InvalidInput, NotFound
from bindrop.moving.places import apps_data_root
from bindrop.moving.restore_server import REFUSED, restore_from_folder
from bindrop.settings import Settings
from bindrop.store import BlobStore, Store

from .test_moving_bundle import RecordingHub, fresh_server, make_server, snapshot


def care_of(settings: Settings, backups: Path) -> CareSettings:
    return CareSettings(backup_dir=backups, apps_data_dir=apps_data_root(settings))


def backed_up(tmp_path: Path) -> tuple[Settings, Path, str]:
    source = make_server(tmp_path / "old")
    backups = tmp_path / "backups"
    result = run_backup(source, care_of(source, backups))
    return source, backups, result.manifest.id


def test_a_server_backup_carries_etc_and_the_blobs_its_releases_need(tmp_path: Path) -> None:
    source, backups, backup_id = backed_up(tmp_path)
    with tarfile.open(backups / backup_id / SERVER_PART) as tar:
        names = tar.getnames()
        member = tar.extractfile(BLOBS_LIST)
        assert member is not None
        blobs, bucket = parse_blobs_list(member.read())
    assert "etc/tls/blog.example.com.key" in names
    with Store.open(source) as store:
        sha = store.list_releases("blog")[0].sha256
    assert [(b.sha256, b.where) for b in blobs] == [(sha, "part")] and bucket is None
    assert f"blobs/{sha}" in names  # no bucket: the blob itself


def test_a_dead_server_comes_back_from_its_backup_folder_with_rows_blobs_and_settings(
    tmp_path: Path,
) -> None:
    source, backups, backup_id = backed_up(tmp_path)
    target = fresh_server(tmp_path / "new")
    hub = RecordingHub()
    restored = restore_from_folder(target, backups, hub)
    assert restored.backup_id == backup_id and hub.calls == ["stop", "start"]
    assert restored.imported.started == ("blog",)
    with Store.open(target) as store:
        assert [a.name for a in store.list_apps()] == ["blog", "shop"]
        sha = store.list_releases("blog")[0].sha256
        assert {t.name for t in store.list_tokens()} == {"old-admin", "new-admin"}
    assert BlobStore.open(target).path(sha).read_bytes() == \
        BlobStore.open(source).path(sha).read_bytes()
    conn = sqlite3.connect(apps_data_root(target) / "blog" / "posts.db")
    assert conn.execute("SELECT count(*) FROM posts").fetchone() == (50,)
    conn.close()
    assert (target.etc_dir / "tls" / "blog.example.com.key").read_text() == "secret"
    assert not list(target.state_dir.glob(".restore-*"))
    assert not list(target.state_dir.glob(".import-*"))


def test_a_damaged_backup_is_refused_and_the_server_is_unchanged(tmp_path: Path) -> None:
    _source, backups, backup_id = backed_up(tmp_path)
    part = backups / backup_id / "app-blog.tar.gz"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    target = fresh_server(tmp_path / "new")
    before = snapshot(target.root)
    hub = RecordingHub()
    with pytest.raises(InvalidInput, match=REFUSED):
        restore_from_folder(target, backups / backup_id, hub)
    assert hub.calls == [] and snapshot(target.root) == before


def test_a_backup_missing_its_server_part_is_not_a_complete_server_backup(
    tmp_path: Path,
) -> None:
    _source, backups, backup_id = backed_up(tmp_path)
    folder = backups / backup_id
    manifest = parse_manifest((folder / MANIFEST).read_text())
    text = (folder / MANIFEST).read_text()
    server = next(p for p in manifest.parts if p.name == SERVER_PART)
    (folder / MANIFEST).write_text(text.replace(f'"{server.sha256}"', f'"{"0" * 64}"'))
    target = fresh_server(tmp_path / "new")
    with pytest.raises(InvalidInput, match=REFUSED):
        restore_from_folder(target, folder, RecordingHub())
    (folder / SERVER_PART).unlink()  # as a backup made before #16
    data = json.loads(text)
    data["parts"] = [p for p in data["parts"] if p["name"] != SERVER_PART]
    (folder / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(InvalidInput, match="not a whole-server backup"):
        restore_from_folder(target, folder, RecordingHub())
    with pytest.raises(NotFound, match="no complete server backup"):
        restore_from_folder(target, backups, RecordingHub())


def test_a_blobs_list_naming_a_path_instead_of_a_sha256_is_refused() -> None:
    for bad in ({"sha256": "../../../etc/shadow", "size": 1, "where": "part"},
                {"sha256": "a" * 64, "size": -1, "where": "part"},
                {"sha256": "a" * 64, "size": 1, "where": "elsewhere"}):
        with pytest.raises(InvalidInput, match="not valid"):
            parse_blobs_list(json.dumps({"bucket": None, "blobs": [bad]}).encode())


def test_a_backup_whose_blobs_list_points_outside_is_refused_and_nothing_changes(
    tmp_path: Path,
) -> None:
    """A backup someone else wrote: its blobs.json names a file of the restoring server."""
    _source, backups, backup_id = backed_up(tmp_path)
    folder = backups / backup_id
    part = folder / SERVER_PART
    unpacked = tmp_path / "unpacked"
    with tarfile.open(part) as tar:
        tar.extractall(unpacked, filter="data")
    (unpacked / BLOBS_LIST).write_text(json.dumps({"bucket": None, "blobs": [
        {"sha256": "../../../../etc/hostname", "size": 1, "where": "part"}]}))
    with tarfile.open(part, "w:gz") as tar:
        for path in sorted(unpacked.iterdir()):
            tar.add(path, arcname=path.name)
    data = json.loads((folder / MANIFEST).read_text())
    size, digest = file_digest(part)
    for p in data["parts"]:
        if p["name"] == SERVER_PART:
            p["size"], p["sha256"] = size, digest
    (folder / MANIFEST).write_text(json.dumps(data))
    target = fresh_server(tmp_path / "new")
    before = snapshot(target.root)
    hub = RecordingHub()
    with pytest.raises(InvalidInput, match=REFUSED):
        restore_from_folder(target, folder, hub)
    assert hub.calls == [] and snapshot(target.root) == before
