"""`bindrop bucket set`'s settings: what is accepted, and care.env rewritten with only its
BINDROP_S3_* lines changed (#16)."""

from __future__ import annotations

import pytest

from bindrop.care.config import S3Config, parse_env_file
from bindrop.errors import InvalidInput
from bindrop.moving.bucket_settings import parse_bucket_settings, render_care_env


def test_bucket_settings_take_the_apis_names_and_default_prefix_and_region() -> None:
    config = parse_bucket_settings({"bucket": "my-bindrop", "endpoint": "https://s3.example.com",
                                    "access_key_id": "AK", "secret_access_key": "SK"})
    assert config == S3Config("my-bindrop", "bindrop", "https://s3.example.com", "us-east-1",
                              "AK", "SK")
    assert "SK" not in repr(config)


@pytest.mark.parametrize("values", [
    {},
    {"bucket": "ab"},
    {"bucket": "Has_Capitals"},
    {"bucket": "ok-name", "endpoint": "ftp://x"},
    {"bucket": "ok-name", "prefix": "a/../b"},
    {"bucket": "ok-name", "prefix": "spaces are not keys"},
    {"bucket": "ok-name", "secret_access_key": "x\nBINDROP_DISK_WEBHOOK=http://evil"},
    {"bucket": "ok-name", "region": 5},
    {"bucket": "ok-name", "colour": "blue"},
])
def test_bucket_settings_that_are_not_a_bucket_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        parse_bucket_settings(values)


def test_care_env_keeps_its_other_lines_and_replaces_the_bucket_lines() -> None:
    current = ("# care\nBINDROP_BACKUP_KEEP_DAILY=3\nBINDROP_S3_BUCKET=old\n"
               "export BINDROP_S3_SECRET_ACCESS_KEY=old-secret\nBINDROP_DISK_THRESHOLD=90\n")
    text = render_care_env(current, S3Config("new-bucket", "srv", None, "eu-west-1", "AK", "SK"))
    values = parse_env_file(text)
    assert values == {"BINDROP_BACKUP_KEEP_DAILY": "3", "BINDROP_DISK_THRESHOLD": "90",
                      "BINDROP_S3_BUCKET": "new-bucket", "BINDROP_S3_PREFIX": "srv",
                      "BINDROP_S3_REGION": "eu-west-1", "BINDROP_S3_ACCESS_KEY_ID": "AK",
                      "BINDROP_S3_SECRET_ACCESS_KEY": "SK"}
    assert text.startswith("# care\n")
    off = parse_env_file(render_care_env(text, None))
    assert off == {"BINDROP_BACKUP_KEEP_DAILY": "3", "BINDROP_DISK_THRESHOLD": "90"}
    assert render_care_env("", None) == ""
