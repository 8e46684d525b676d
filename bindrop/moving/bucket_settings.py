"""``bindrop bucket set|show|off``: the bucket release blobs (and backups) go to, set through
the API. Kept where backups read it, ``/etc/bindrop/care.env`` (BINDROP_S3_*, mode 0600);
the hub's blob store switches to it at once, and every blob already here is written there,
so every release exists off the server from then on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from bindrop.care.config import CARE_FILE, S3Config, load_care_settings
from bindrop.errors import BindropError, InvalidInput
from bindrop.moving.bucket import BlobBucket
from bindrop.settings import Settings
from bindrop.store.blobs import BlobStore

#: The API's names of the settings -> care.env's.
KEYS = {"bucket": "BINDROP_S3_BUCKET", "prefix": "BINDROP_S3_PREFIX",
        "endpoint": "BINDROP_S3_ENDPOINT", "region": "BINDROP_S3_REGION",
        "access_key_id": "BINDROP_S3_ACCESS_KEY_ID",
        "secret_access_key": "BINDROP_S3_SECRET_ACCESS_KEY"}
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX = re.compile(r"[A-Za-z0-9._/-]{1,200}")


def parse_bucket_settings(values: Mapping[str, Any]) -> S3Config:
    """The bucket described by ``values`` (the API's names); ``InvalidInput``. Pure."""
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise InvalidInput(f"unknown bucket settings: {', '.join(unknown)}; known: "
                           f"{', '.join(KEYS)}")
    text = {k: v for k, v in values.items() if v is not None}
    if any(not isinstance(v, str) or "\n" in v or "\r" in v for v in text.values()):
        raise InvalidInput("bucket settings are strings on one line")
    bucket = text.get("bucket", "")
    if not _BUCKET.fullmatch(bucket):
        raise InvalidInput(f"{bucket!r} is not a bucket name (3-63 of a-z 0-9 . -)")
    prefix = text.get("prefix") or "bindrop"
    if not _PREFIX.fullmatch(prefix) or ".." in prefix.split("/"):
        raise InvalidInput(f"{prefix!r} is not a key prefix (letters, digits, . _ / -)")
    endpoint = text.get("endpoint") or None
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise InvalidInput(f"the endpoint must be an http(s):// URL, not {endpoint!r}")
    return S3Config(bucket, prefix.strip("/"), endpoint, text.get("region") or "us-east-1",
                    text.get("access_key_id") or None, text.get("secret_access_key") or None)


def render_care_env(current: str, config: S3Config | None) -> str:
    """care.env's text with its BINDROP_S3_* lines replaced by ``config``'s (none: removed).
    Other lines stay as they are. Pure."""
    kept = [line for line in current.splitlines()
            if not line.strip().removeprefix("export ").strip().startswith("BINDROP_S3_")]
    if config is not None:
        values = {"BINDROP_S3_BUCKET": config.bucket, "BINDROP_S3_PREFIX": config.prefix,
                  "BINDROP_S3_ENDPOINT": config.endpoint, "BINDROP_S3_REGION": config.region,
                  "BINDROP_S3_ACCESS_KEY_ID": config.access_key,
                  "BINDROP_S3_SECRET_ACCESS_KEY": config.secret_key}
        kept += [f"{k}={v}" for k, v in values.items() if v]
    return "\n".join(kept) + "\n" if kept else ""


class BucketSettings:
    """What the API's /v1/bucket routes call (blocking: run it in a thread)."""

    def __init__(self, settings: Settings, blobs: BlobStore) -> None:
        self.settings = settings
        self.blobs = blobs

    def show(self) -> dict[str, Any]:
        s3 = load_care_settings(self.settings, {}).s3
        if s3 is None:
            return {"bucket": None, "blobs_in_bucket": False}
        return {**s3.describe(), "access_key_id": s3.access_key,
                "secret_access_key": "(set)" if s3.secret_key else None,
                "blobs_in_bucket": self.blobs.remote is not None}

    def set(self, values: Mapping[str, Any]) -> dict[str, Any]:
        config = parse_bucket_settings(values)
        remote = BlobBucket(config)
        try:
            remote.check()
        except BindropError as exc:
            raise InvalidInput(f"that bucket cannot be used, nothing was changed: "
                               f"{exc.message}") from None
        self._write(config)
        self.blobs.remote = remote
        sent = 0
        for path in sorted(self.blobs.root.iterdir()):
            if len(path.name) == 64 and path.is_file():
                sent += remote.ensure(path.name, path)
        return self.show() | {"blobs_sent": sent}

    def off(self) -> dict[str, Any]:
        self._write(None)
        self.blobs.remote = None
        return self.show()

    def _write(self, config: S3Config | None) -> None:
        path = self.settings.etc_dir / CARE_FILE
        current = path.read_text() if path.exists() else ""
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{CARE_FILE}.new")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(render_care_env(current, config))
        os.replace(temp, path)
