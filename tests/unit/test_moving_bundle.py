"""Export a server into one bundle and import it elsewhere: whole, or refused untouched (#9)."""

from __future__ import annotations

import io
import os
import sqlite3
import tarfile
from pathlib import Path

import pytest

from bindrop.errors import Conflict, InvalidInput
from bindrop.moving.export import export_bundle
from bindrop.moving.importer import REFUSED, import_bundle
from bindrop.moving.places import app_data_dir
from bindrop.settings import Settings
from bindrop.store import AppConfig, BlobStore, Store


class RecordingHub:
    """Stands in for bindrop.service: the import must stop it around the swap, then start it."""

    def __init__(self, running: bool = True) -> None:
        self.running = running
        self.calls: list[str] = []

    def stop(self) -> bool:
        self.calls.append("stop")
        was, self.running = self.running, False
        return was

    def start(self) -> None:
        self.calls.append("start")
        self.running = True


def make_server(root: Path) -> Settings:
    """A server with two apps (one with a WAL SQLite database and a file), a token, /etc."""
    settings = Settings(root=root)
    blobs = BlobStore.open(settings)
    binary = root / "app.bin"
    binary.write_bytes(b"#!/bin/sh\necho hi\n" * 100)
    blob = blobs.put_file(binary, max_size=1 << 20)
    with Store.open(settings) as store:
        for name in ("blog", "shop"):
            store.create_app(AppConfig(name=name, hosts=(f"{name}.example.com",)))
            store.add_release(name, blob.sha256, blob.size, "binary", [], "tests")
            store.update_app(name, current_release=1)
        store.update_app("shop", desired_state="stopped")
        store.create_token("old-admin", "admin")
    data = app_data_dir(settings, "blog")
    (data / "sub").mkdir(parents=True)
    conn = sqlite3.connect(data / "posts.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT)")
    conn.executemany("INSERT INTO posts (title) VALUES (?)", [(f"post {i}",) for i in range(50)])
    conn.close()
    (data / "sub" / "upload.txt").write_text("a file")
    (settings.etc_dir / "tls").mkdir(parents=True)
    (settings.etc_dir / "tls" / "blog.example.com.key").write_text("secret")
    os.chmod(settings.etc_dir / "tls" / "blog.example.com.key", 0o600)
    return settings


def fresh_server(root: Path) -> Settings:
    settings = Settings(root=root)
    with Store.open(settings) as store:
        store.create_token("new-admin", "admin")
    return settings


def export_bytes(settings: Settings) -> bytes:
    out = io.BytesIO()
    export_bundle(settings, out)
    return out.getvalue()


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes, but SQLite's -wal/-shm: a reader (the import's check for existing
    apps) may create them empty, which changes no data."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def test_an_exported_server_imports_whole_with_the_same_rows_blobs_data_and_settings(
    tmp_path: Path,
) -> None:
    source = make_server(tmp_path / "old")
    target = fresh_server(tmp_path / "new")
    hub = RecordingHub()
    result = import_bundle(target, io.BytesIO(export_bytes(source)), hub)
    assert hub.calls == ["stop", "start"]
    assert result.started == ("blog",)  # shop was stopped on purpose
    with Store.open(target) as store:
        assert [a.name for a in store.list_apps()] == ["blog", "shop"]
        assert store.get_app("blog").hosts == ("blog.example.com",)
        release = store.list_releases("blog")[0]
        # Both servers' tokens work: the admin's new token and the old laptop's.
        assert {t.name for t in store.list_tokens()} == {"old-admin", "new-admin"}
    assert BlobStore.open(target).exists(release.sha256)
    data = app_data_dir(target, "blog")
    conn = sqlite3.connect(data / "posts.db")
    assert conn.execute("SELECT count(*) FROM posts").fetchone() == (50,)
    conn.close()
    assert (data / "sub" / "upload.txt").read_text() == "a file"
    key = target.etc_dir / "tls" / "blog.example.com.key"
    assert key.read_text() == "secret" and key.stat().st_mode & 0o777 == 0o600
    assert not list(target.state_dir.glob(".import-*"))


def test_a_bundle_with_one_flipped_byte_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    bundle = bytearray(export_bytes(make_server(tmp_path / "old")))
    marker = bundle.find(b"echo hi")  # inside the release's blob
    bundle[marker] ^= 0x01
    target = fresh_server(tmp_path / "new")
    before = snapshot(target.root)
    hub = RecordingHub()
    with pytest.raises(InvalidInput) as refused:
        import_bundle(target, io.BytesIO(bytes(bundle)), hub)
    assert refused.value.message.startswith(REFUSED)
    assert "sha256" in refused.value.message
    assert hub.calls == []
    assert snapshot(target.root) == before


@pytest.mark.parametrize("cut", [0.1, 0.5, 1.0])
def test_a_bundle_cut_short_is_refused(tmp_path: Path, cut: float) -> None:
    bundle = export_bytes(make_server(tmp_path / "old"))
    end_of_manifest = bundle.rfind(b"}") + 1  # after it, only tar's zero padding
    target = fresh_server(tmp_path / "new")
    before = snapshot(target.root)
    with pytest.raises(InvalidInput, match=REFUSED):
        import_bundle(target, io.BytesIO(bundle[: int(end_of_manifest * cut) - 1]),
                      RecordingHub())
    assert snapshot(target.root) == before


def test_a_member_that_escapes_the_staging_directory_is_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("apps/blog/../../../etc/passwd")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    target = fresh_server(tmp_path / "new")
    with pytest.raises(InvalidInput, match="unsafe name"):
        import_bundle(target, io.BytesIO(out.getvalue()), RecordingHub())


def test_a_server_with_apps_refuses_an_import_unless_told_to_replace(tmp_path: Path) -> None:
    bundle = export_bytes(make_server(tmp_path / "old"))
    busy = make_server(tmp_path / "busy")
    with pytest.raises(Conflict, match="--replace"):
        import_bundle(busy, io.BytesIO(bundle), RecordingHub())
    import_bundle(busy, io.BytesIO(bundle), RecordingHub(), replace=True)


def test_the_app_databases_wal_files_are_inside_its_snapshot(tmp_path: Path) -> None:
    source = make_server(tmp_path / "old")
    keep = sqlite3.connect(app_data_dir(source, "blog") / "posts.db")  # keeps -wal and -shm
    keep.execute("INSERT INTO posts (title) VALUES ('late')")
    keep.commit()
    try:
        bundle = export_bytes(source)
    finally:
        keep.close()
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        names = tar.getnames()
    assert "apps/blog/posts.db" in names
    assert not [n for n in names if n.endswith(("-wal", "-shm"))]
    assert names[-1] == "manifest.json"
