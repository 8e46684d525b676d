"""`bindrop bucket set|show|off` through the API (#16), against moto's S3 server: the bucket
is checked before it is kept; from then on every upload is written there."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bindrop.api import serve_api
from bindrop.care.config import CARE_FILE
from bindrop.client.client import Client, RemoteError
from bindrop.hub.hub import Hub
from bindrop.moving.bucket_settings import BucketSettings
from bindrop.settings import Settings

from .carekit import S3_KEYS as KEYS
from .carekit import s3_bucket
from .hubkit import HELLO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    with s3_bucket("blobs-here") as client:
        yield client


@pytest.fixture
async def client(hub: Hub, settings: Settings) -> AsyncIterator[Client]:
    async with serve_api(hub, settings, bucket=BucketSettings(settings, hub.blobs)) as api, \
            Client(f"unix:{api.socket_path}") as the_client:
        yield the_client
    hub.blobs.remote = None


async def test_a_bucket_set_through_the_api_gets_every_upload_and_off_stops_it(
    client: Client, hub: Hub, settings: Settings, s3: Any,
) -> None:
    await client.create_app({"name": "bk", "hosts": ["bk.test"]})
    early = await client.upload_release("bk", HELLO, command=["--label", "early"])
    done = await client.set_bucket({
        "bucket": "blobs-here", "prefix": "srv", "endpoint": s3.meta.endpoint_url,
        "access_key_id": KEYS["aws_access_key_id"],
        "secret_access_key": KEYS["aws_secret_access_key"]})
    assert done["bucket"] == "blobs-here" and done["blobs_in_bucket"]
    assert done["secret_access_key"] == "(set)" and "testing-secret" not in str(done)
    # What was here before is sent at once; what comes later, on upload.
    s3.head_object(Bucket="blobs-here", Key=f"srv/blobs/sha256/{early['sha256']}")
    other = Path(settings.root) / "other.py"
    other.write_text(HELLO.read_text() + "\n# another blob\n")
    later = await client.upload_release("bk", other)
    body = s3.get_object(Bucket="blobs-here", Key=f"srv/blobs/sha256/{later['sha256']}")
    assert body["Body"].read() == other.read_bytes()
    care = settings.etc_dir / CARE_FILE
    assert care.stat().st_mode & 0o777 == 0o600
    assert "BINDROP_S3_BUCKET=blobs-here" in care.read_text()
    assert (await client.bucket())["prefix"] == "srv"
    off = await client.bucket_off()
    assert off == {"bucket": None, "blobs_in_bucket": False}
    assert hub.blobs.remote is None and "BINDROP_S3" not in care.read_text()


async def test_a_bucket_that_cannot_be_reached_is_refused_and_nothing_is_kept(
    client: Client, hub: Hub, settings: Settings, s3: Any,
) -> None:
    care = settings.etc_dir / CARE_FILE
    before = care.read_text() if care.exists() else None
    for bad in ({"bucket": "no-such-bucket", "endpoint": s3.meta.endpoint_url,
                 "access_key_id": "testing", "secret_access_key": "x"},
                {"bucket": "Not_A_Bucket"},
                {"bucket": "blobs-here", "endpoint": "file:///etc"},
                {"bucket": "blobs-here", "prefix": "../up"},
                {"bucket": "blobs-here", "access_key_id": "a\nBINDROP_DISK_WEBHOOK=x"}):
        with pytest.raises(RemoteError):
            await client.set_bucket(bad)
    assert (care.read_text() if care.exists() else None) == before
    assert hub.blobs.remote is None


async def test_an_upload_the_bucket_does_not_take_is_refused_and_leaves_no_release(
    client: Client, hub: Hub, settings: Settings, s3: Any,
) -> None:
    s3.create_bucket(Bucket="goes-away")
    await client.set_bucket({"bucket": "goes-away", "endpoint": s3.meta.endpoint_url,
                             "access_key_id": "testing", "secret_access_key": "x"})
    s3.delete_bucket(Bucket="goes-away")
    await client.create_app({"name": "nb", "hosts": ["nb.test"]})
    program = Path(settings.root) / "lost.py"
    program.write_text(HELLO.read_text() + "\n# never off the server\n")
    with pytest.raises(RemoteError, match="goes-away"):
        await client.upload_release("nb", program)
    assert hub.store.list_releases("nb") == []
    assert not [p for p in hub.blobs.root.iterdir()
                if p.read_bytes() == program.read_bytes()]
    await client.bucket_off()
