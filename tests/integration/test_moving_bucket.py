"""Bundles without the release blobs: they go to the backups' S3 bucket and the import fetches
and checks them there (#9). Against a real S3-compatible server (moto's server mode)."""

from __future__ import annotations

import dataclasses
import io
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bindrop.care.config import CARE_FILE, S3Config, load_care_settings
from bindrop.errors import InvalidInput, NotFound
from bindrop.moving.bucket import BlobBucket
from bindrop.moving.export import export_bundle
from bindrop.moving.importer import REFUSED, import_bundle
from bindrop.settings import Settings
from bindrop.store import BlobStore, Store

from ..unit.test_moving_bundle import RecordingHub, fresh_server, make_server, snapshot
from .carekit import S3_KEYS as KEYS
from .carekit import s3_bucket

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    with s3_bucket("moving") as client:
        yield client


def with_bucket(settings: Settings, endpoint: str) -> Settings:
    (settings.etc_dir / CARE_FILE).write_text(
        f"BINDROP_S3_BUCKET=moving\nBINDROP_S3_PREFIX=srv\nBINDROP_S3_ENDPOINT={endpoint}\n"
        f"BINDROP_S3_ACCESS_KEY_ID={KEYS['aws_access_key_id']}\n"
        f"BINDROP_S3_SECRET_ACCESS_KEY={KEYS['aws_secret_access_key']}\n")
    os.chmod(settings.etc_dir / CARE_FILE, 0o600)
    return settings


def server_with_bucket(s3: Any, root: Path) -> tuple[Settings, str]:
    """A server at ``root`` with the blog app (make_server) and the bucket in its care.env;
    and the sha256 of blog's release."""
    settings = with_bucket(make_server(root), s3.meta.endpoint_url)
    with Store.open(settings) as store:
        sha = store.list_releases("blog")[0].sha256
    return settings, sha


def s3_config(settings: Settings) -> S3Config:
    config = load_care_settings(settings, {}).s3
    assert config is not None
    return config


def export_to_bucket(settings: Settings) -> bytes:
    out = io.BytesIO()
    export_bundle(settings, out, bucket=BlobBucket(s3_config(settings)))
    return out.getvalue()


def test_blobs_travel_through_the_bucket_and_the_bundle_carries_the_rest(
    s3: Any, tmp_path: Path,
) -> None:
    source, sha = server_with_bucket(s3, tmp_path / "old")
    bundle = export_to_bucket(source)
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        names = tar.getnames()
        member = tar.extractfile("manifest.json")
        assert member is not None
        manifest = member.read().decode()
    assert not [n for n in names if n.startswith("blobs/")]
    assert '"kind": "bucket-blob"' in manifest and "testing-secret" not in manifest
    assert s3.head_object(Bucket="moving", Key=f"srv/blobs/sha256/{sha}")["ContentLength"] > 0
    # The new server has no bucket settings of its own: the bundle's care.env has the keys.
    target = fresh_server(tmp_path / "new")
    import_bundle(target, io.BytesIO(bundle), RecordingHub())
    blob = BlobStore.open(target).path(sha)
    assert blob.read_bytes() == BlobStore.open(source).path(sha).read_bytes()
    assert blob.stat().st_mode & 0o777 == 0o555  # apps (dynamic users) execute it


def test_a_blob_changed_in_the_bucket_is_refused_and_nothing_changes(
    s3: Any, tmp_path: Path,
) -> None:
    source, sha = server_with_bucket(s3, tmp_path / "old")
    bundle = export_to_bucket(source)
    s3.put_object(Bucket="moving", Key=f"srv/blobs/sha256/{sha}", Body=b"not the release")
    target = fresh_server(tmp_path / "new")
    before = snapshot(target.root)
    hub = RecordingHub()
    with pytest.raises(InvalidInput, match=REFUSED):
        import_bundle(target, io.BytesIO(bundle), hub)
    assert hub.calls == [] and snapshot(target.root) == before


def test_a_blob_where_bindrop_put_it_before_the_sha256_level_is_still_read(
    s3: Any, tmp_path: Path,
) -> None:
    source, sha = server_with_bucket(s3, tmp_path / "old")
    bundle = export_to_bucket(source)
    data = BlobStore.open(source).path(sha).read_bytes()
    s3.delete_object(Bucket="moving", Key=f"srv/blobs/sha256/{sha}")
    s3.put_object(Bucket="moving", Key=f"srv/blobs/{sha}", Body=data)  # the old layout
    target = fresh_server(tmp_path / "new")
    import_bundle(target, io.BytesIO(bundle), RecordingHub())
    assert BlobStore.open(target).path(sha).read_bytes() == data


def bucket_of(settings: Settings) -> BlobBucket:
    return BlobBucket(s3_config(settings))


async def test_the_blob_store_is_a_cache_of_the_bucket_an_evicted_blob_comes_back_checked(
    s3: Any, tmp_path: Path,
) -> None:
    """#16: every upload is written to the bucket; a blob gc evicted is fetched back (and
    its sha256 checked) before it is used; a damaged copy is never used."""
    settings = Settings(root=tmp_path / "srv")
    settings.etc_dir.mkdir(parents=True)
    with_bucket(settings, s3.meta.endpoint_url)
    blobs = BlobStore(settings.blobs_dir, bucket_of(settings))
    data = b"#!/bin/sh\necho cached\n" * 50
    blob = await blobs.put_stream([data], max_size=1 << 20)
    assert await blobs.mirror(blob.sha256) is True
    assert await blobs.mirror(blob.sha256) is False  # there already: not sent again
    key = f"srv/blobs/sha256/{blob.sha256}"
    assert s3.get_object(Bucket="moving", Key=key)["Body"].read() == data
    blobs.remove(blob.sha256)  # what gc does to a blob the bucket holds
    assert await blobs.fetch(blob.sha256) is True
    assert blobs.path(blob.sha256).read_bytes() == data
    assert blobs.path(blob.sha256).stat().st_mode & 0o777 == 0o555
    assert await blobs.fetch(blob.sha256) is False
    blobs.remove(blob.sha256)
    s3.put_object(Bucket="moving", Key=key, Body=b"#!/bin/sh\necho evil\n")
    with pytest.raises(InvalidInput, match="damaged"):
        await blobs.fetch(blob.sha256)
    assert not blobs.exists(blob.sha256)
    assert not [p for p in settings.blobs_dir.iterdir()]  # no temp file left behind
    with pytest.raises(NotFound):
        await blobs.fetch("0" * 64)
    assert await BlobStore(tmp_path / "nobucket").mirror(blob.sha256) is False


async def test_gc_evicts_a_cached_blob_the_bucket_holds_but_not_one_just_fetched(
    s3: Any, tmp_path: Path,
) -> None:
    """A deploy fetches its blob back, then starts the unit: gc between the two must not
    take the blob away again. Fresh blobs (an hour's grace, as for uploads) stay."""
    from bindrop.care.backup import s3_of
    from bindrop.care.gc import BLOB_GRACE_S, evict_cached_blobs

    settings = Settings(root=tmp_path / "srv")
    settings.etc_dir.mkdir(parents=True)
    with_bucket(settings, s3.meta.endpoint_url)
    blobs = BlobStore(settings.blobs_dir, bucket_of(settings))
    bucket = s3_of(load_care_settings(settings, {}))  # how gc sees the bucket
    assert bucket is not None
    kept, fetched, old, used = [await blobs.put_stream(
        [f"#!/bin/sh\necho {n}\n".encode()], max_size=1 << 20) for n in range(4)]
    for blob in (kept, fetched, old, used):
        assert await blobs.mirror(blob.sha256) is True
    blobs.remove(fetched.sha256)
    assert await blobs.fetch(fetched.sha256) is True  # a deploy, just now
    now = time.time()
    for blob in (kept, old, used):
        os.utime(blobs.path(blob.sha256), (now - BLOB_GRACE_S - 60,) * 2)
    assert blobs.touch(used.sha256) is True  # a rollback to a release whose blob is here
    dry = evict_cached_blobs(settings, bucket.blob_size, {kept.sha256}, now=now, dry_run=True)
    assert dry == (1, blobs.path(old.sha256).stat().st_size)
    assert blobs.exists(old.sha256)
    assert evict_cached_blobs(settings, bucket.blob_size, {kept.sha256}, now=now) == dry
    assert [blobs.exists(b.sha256) for b in (kept, fetched, old)] == [True, True, False]
    assert blobs.exists(used.sha256)
    # an hour later the fetched and the used one are cache entries like any other
    later = now + BLOB_GRACE_S + 60
    assert evict_cached_blobs(settings, bucket.blob_size, {kept.sha256}, now=later)[0] == 2
    assert [blobs.exists(b.sha256) for b in (kept, fetched, used)] == [True, False, False]
    # an upload of a blob that is here already makes it as fresh as a new one
    os.utime(blobs.path(kept.sha256), (now - BLOB_GRACE_S - 60,) * 2)
    await blobs.put_stream([b"#!/bin/sh\necho 0\n"], max_size=1 << 20)
    assert blobs.path(kept.sha256).stat().st_mtime >= now - 1


def backup_to_bucket(settings: Settings) -> str:
    from bindrop.care.backup import run_backup
    from bindrop.moving.places import apps_data_root

    care = dataclasses.replace(load_care_settings(settings, {}),
                               apps_data_dir=apps_data_root(settings))
    result = run_backup(settings, care)
    assert result.uploaded
    return result.manifest.id


def test_a_server_backup_with_a_bucket_lists_the_blobs_there_and_restores_from_it_alone(
    s3: Any, tmp_path: Path,
) -> None:
    from bindrop.moving.restore_server import restore_from_bucket

    source, sha = server_with_bucket(s3, tmp_path / "old")
    backup_id = backup_to_bucket(source)
    part = s3.get_object(Bucket="moving", Key=f"srv/{backup_id}/server.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(part)) as tar:
        assert f"blobs/{sha}" not in tar.getnames()  # the bucket has it: only listed
    s3.head_object(Bucket="moving", Key=f"srv/blobs/sha256/{sha}")
    target = fresh_server(tmp_path / "new")
    restored = restore_from_bucket(target, s3_config(source), RecordingHub())
    assert restored.backup_id >= backup_id
    assert BlobStore.open(target).path(sha).read_bytes() == \
        BlobStore.open(source).path(sha).read_bytes()
    assert (target.etc_dir / CARE_FILE).read_text() == (source.etc_dir / CARE_FILE).read_text()


def test_a_restore_whose_blob_is_gone_from_the_bucket_is_refused_and_nothing_changes(
    s3: Any, tmp_path: Path,
) -> None:
    from bindrop.moving.restore_server import restore_from_bucket

    source, sha = server_with_bucket(s3, tmp_path / "old")
    backup_id = backup_to_bucket(source)
    for key in (f"srv/blobs/sha256/{sha}", f"srv/blobs/{sha}"):  # and the older layout's
        s3.delete_object(Bucket="moving", Key=key)
    target = fresh_server(tmp_path / "new")
    before = snapshot(target.root)
    hub = RecordingHub()
    with pytest.raises(InvalidInput, match=REFUSED):
        restore_from_bucket(target, s3_config(source), hub, backup_id=backup_id)
    assert hub.calls == [] and snapshot(target.root) == before
