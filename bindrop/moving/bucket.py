"""Release blobs in an S3-compatible bucket, for bundles that do not carry them.

The bucket is the one backups use (``BINDROP_S3_*`` in /etc/bindrop/care.env); blobs go to
``<prefix>/blobs/sha256/<sha256>`` (bindrop before #16 wrote ``<prefix>/blobs/<sha256>``:
still read). Blobs are content-addressed, so one already there is not sent again, one sent
is checked after the write, and a download is checked against its name before anything
trusts it. botocore's
errors become ``BindropError`` here, and only here; messages never hold the keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bindrop.care.config import S3Config
from bindrop.errors import BindropError

CHUNK = 1024 * 1024


class BlobBucket:
    def __init__(self, config: S3Config) -> None:
        import boto3  # slow to import: only when a bucket is used

        self.config = config
        self._client: Any = boto3.client(
            "s3", endpoint_url=config.endpoint, region_name=config.region,
            aws_access_key_id=config.access_key, aws_secret_access_key=config.secret_key)

    @property
    def where(self) -> str:
        return f"s3://{self.config.bucket}/{self.config.key('blobs')}"

    def key(self, sha256: str) -> str:
        return self.config.blob_key(sha256)

    def legacy_key(self, sha256: str) -> str:
        """Where ``--blobs-in-bucket`` put blobs before the ``sha256/`` level."""
        return self.config.key("blobs", sha256)

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise BindropError(f"{what} on {self.where} failed: {code or exc}") from None
        except (BotoCoreError, Boto3Error) as exc:  # Boto3Error: upload_file's own
            raise BindropError(f"{what} on {self.where} failed: {exc}") from None

    def check(self) -> None:
        """``BindropError`` unless the bucket exists and these keys may use it."""
        self._call("reaching the bucket", self._client.head_bucket, Bucket=self.config.bucket)

    def size(self, sha256: str, *, key: str | None = None) -> int | None:
        """The stored blob's size, or None when the bucket does not have it."""
        from botocore.exceptions import ClientError

        try:
            head = self._client.head_object(Bucket=self.config.bucket,
                                            Key=key or self.key(sha256))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise BindropError(f"asking {self.where} for {sha256[:12]} failed: "
                               f"{exc.response.get('Error', {}).get('Code', exc)}") from None
        return int(head["ContentLength"])

    def ensure(self, sha256: str, path: Path) -> bool:
        """Upload the blob at ``path`` unless the bucket has it (same size); True if sent."""
        if self.size(sha256) == path.stat().st_size:
            return False
        size = path.stat().st_size
        self._call(f"uploading blob {sha256[:12]}", self._client.upload_file,
                   Filename=str(path), Bucket=self.config.bucket, Key=self.key(sha256))
        if self.size(sha256) != size:
            raise BindropError(f"blob {sha256[:12]} is not whole in {self.where} after "
                               "the upload; try again")
        return True

    def download(self, sha256: str, dest: Path) -> tuple[int, str]:
        """Write the blob to ``dest`` (new file); return its size and the sha256 of the bytes
        received, for the caller to compare."""
        key = self.key(sha256)
        if self.size(sha256) is None and self.size(sha256, key=self.legacy_key(sha256)):
            key = self.legacy_key(sha256)
        body = self._call(f"downloading blob {sha256[:12]}", self._client.get_object,
                          Bucket=self.config.bucket, Key=key)["Body"]
        digest, size = hashlib.sha256(), 0
        with open(dest, "xb") as out:
            while chunk := body.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        return size, digest.hexdigest()


def describe_bucket(config: S3Config) -> dict[str, str | None]:
    """What a manifest records of the bucket: where, never the keys. Pure."""
    return config.describe()


def bucket_config(recorded: Mapping[str, Any], own: S3Config | None,
                  bundled_env: Mapping[str, str]) -> S3Config:
    """The bucket a bundle's blobs are in (``recorded`` in its manifest), with keys from this
    server's care settings when they name that bucket, else from the bundle's own
    care.env (``bundled_env``), else none (boto3's defaults: ``AWS_*``, an instance role).
    Pure."""
    bucket = str(recorded["bucket"])
    prefix = str(recorded.get("prefix") or "bindrop")
    endpoint = recorded.get("endpoint")
    region = str(recorded.get("region") or "us-east-1")
    if own is not None and own.bucket == bucket:
        return S3Config(bucket, prefix, own.endpoint or endpoint, own.region, own.access_key,
                        own.secret_key)
    if bundled_env.get("BINDROP_S3_BUCKET") == bucket:
        return S3Config(bucket, prefix, bundled_env.get("BINDROP_S3_ENDPOINT") or endpoint,
                        region, bundled_env.get("BINDROP_S3_ACCESS_KEY_ID"),
                        bundled_env.get("BINDROP_S3_SECRET_ACCESS_KEY"))
    return S3Config(bucket, prefix, endpoint, region)
