"""Backups in an S3-compatible bucket: ``<prefix>/<id>/<part>`` and ``…/manifest.json``.

boto3 does the signing and multipart uploads. The manifest is uploaded last and deleted
first, so a listing never shows a backup whose parts are not all there. botocore's errors
become ``BackupFailed`` here, and only here; their messages never hold the keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bindrop.care.config import S3Config
from bindrop.care.manifest import MANIFEST, Manifest, parse_backup_id, parse_manifest
from bindrop.errors import BackupFailed, InvalidInput, NotFound


class S3Backups:
    def __init__(self, config: S3Config) -> None:
        import boto3  # slow to import: only when a bucket is configured
        from botocore.config import Config

        self.config = config
        self._client: Any = boto3.client(
            "s3", endpoint_url=config.endpoint, region_name=config.region,
            aws_access_key_id=config.access_key, aws_secret_access_key=config.secret_key,
            config=Config(retries={"max_attempts": 3, "mode": "standard"},
                          connect_timeout=10, read_timeout=60))

    @property
    def where(self) -> str:
        return f"s3://{self.config.bucket}/{self.config.prefix}"

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise NotFound(f"{what}: not in {self.where}") from None
            raise BackupFailed(f"{what} on {self.where} failed: {code or exc}") from None
        except (BotoCoreError, Boto3Error) as exc:  # Boto3Error: upload_file's own
            raise BackupFailed(f"{what} on {self.where} failed: {exc}") from None

    def blob_size(self, sha256: str) -> int | None:
        """The size of the release blob ``sha256`` in the bucket; None when it is not there."""
        try:
            head = self._call(f"asking for blob {sha256[:12]}", self._client.head_object,
                              Bucket=self.config.bucket, Key=self.config.blob_key(sha256))
        except NotFound:
            return None
        return int(head["ContentLength"])

    def ensure_blob(self, sha256: str, path: Path) -> bool:
        """Upload the release blob at ``path`` unless the bucket has it whole; check it is
        there after the write. True if sent; ``BackupFailed`` on failure."""
        size = path.stat().st_size
        if self.blob_size(sha256) == size:
            return False
        self._call(f"uploading blob {sha256[:12]}", self._client.upload_file,
                   Filename=str(path), Bucket=self.config.bucket,
                   Key=self.config.blob_key(sha256))
        if self.blob_size(sha256) != size:
            raise BackupFailed(f"blob {sha256[:12]} is not whole in {self.where} after the "
                               "upload")
        return True

    def upload(self, folder: Path, manifest: Manifest) -> None:
        """Upload a complete local backup: its parts, then its manifest."""
        for part in manifest.parts:
            self._call(f"uploading {manifest.id}/{part.name}", self._client.upload_file,
                       Filename=str(folder / part.name), Bucket=self.config.bucket,
                       Key=self.config.key(manifest.id, part.name))
        self._call(f"uploading {manifest.id}/{MANIFEST}", self._client.put_object,
                   Bucket=self.config.bucket, Key=self.config.key(manifest.id, MANIFEST),
                   Body=manifest.to_json().encode(), ContentType="application/json")

    def _ids(self) -> list[str]:
        ids = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.config.bucket,
                                      "Prefix": self.config.key() + "/"}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("listing backups", self._client.list_objects_v2, **kwargs)
            for obj in page.get("Contents", []):
                rest = obj["Key"][len(kwargs["Prefix"]):]
                backup_id, _, name = rest.partition("/")
                if name == MANIFEST:
                    ids.append(backup_id)
            token = page.get("NextContinuationToken")
            if not token:
                return sorted(ids)

    def manifest(self, backup_id: str) -> Manifest:
        parse_backup_id(backup_id)
        answer = self._call(f"reading {backup_id}/{MANIFEST}", self._client.get_object,
                            Bucket=self.config.bucket, Key=self.config.key(backup_id, MANIFEST))
        return parse_manifest(answer["Body"].read().decode(), backup_id)

    def list(self) -> list[Manifest]:
        found = []
        for backup_id in self._ids():
            try:
                found.append(self.manifest(backup_id))
            except (InvalidInput, NotFound):
                continue
        return found

    def download(self, backup_id: str, folder: Path) -> Manifest:
        """The backup's manifest and parts into ``folder`` (created); checked by the caller."""
        manifest = self.manifest(backup_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST).write_text(manifest.to_json())
        for part in manifest.parts:
            self._call(f"downloading {backup_id}/{part.name}", self._client.download_file,
                       Bucket=self.config.bucket, Key=self.config.key(backup_id, part.name),
                       Filename=str(folder / part.name))
        return manifest

    def delete(self, backup_id: str) -> int:
        manifest = self.manifest(backup_id)
        keys = [self.config.key(backup_id, MANIFEST)]
        keys += [self.config.key(backup_id, p.name) for p in manifest.parts]
        for key in keys:
            self._call(f"deleting {key}", self._client.delete_object,
                       Bucket=self.config.bucket, Key=key)
        return manifest.size
