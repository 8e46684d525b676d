"""Care settings: /etc/bindrop/care.env, overridden by the environment; secrets kept out of repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from bindrop.care.config import load_care_settings, parse_env_file, parse_threshold
from bindrop.care.disk import DiskReport, Filesystem, over_threshold
from bindrop.errors import InvalidInput
from bindrop.settings import Settings


def test_the_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    settings = Settings(root=tmp_path)
    settings.etc_dir.mkdir(parents=True)
    (settings.etc_dir / "care.env").write_text(
        "# backups\nBINDROP_S3_BUCKET=bk\nBINDROP_S3_SECRET_ACCESS_KEY='s3cr3t'\n"
        "export BINDROP_BACKUP_KEEP_DAILY=3\nBINDROP_DISK_THRESHOLD=90%\n")
    care = load_care_settings(settings, {"BINDROP_BACKUP_KEEP_DAILY": "5"})
    assert care.keep_daily == 5 and care.keep_weekly == 4
    assert care.disk_threshold == 90.0
    assert care.s3 is not None and care.s3.secret_key == "s3cr3t"
    assert "s3cr3t" not in repr(care)
    assert care.backup_dir == tmp_path / "var/backups/bindrop"
    assert care.apps_data_dir == tmp_path / "var/lib/private/bindrop/apps"


def test_no_bucket_means_no_s3(tmp_path: Path) -> None:
    assert load_care_settings(Settings(root=tmp_path), {}).s3 is None


@pytest.mark.parametrize("text", ["nonsense", "=x", "A B=c"])
def test_a_line_that_is_not_key_value_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="line 1"):
        parse_env_file(text)


@pytest.mark.parametrize(("text", "value"), [(None, 85.0), ("90", 90.0), ("72.5%", 72.5)])
def test_threshold_parses(text: str | None, value: float) -> None:
    assert parse_threshold(text) == value


@pytest.mark.parametrize("text", ["0", "101", "lots", "-5"])
def test_a_bad_threshold_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="percentage"):
        parse_threshold(text)


@pytest.mark.parametrize(
    ("env", "message"),
    [({"BINDROP_BACKUP_KEEP_DAILY": "many"}, "whole number"),
     ({"BINDROP_DISK_WEBHOOK": "ftp://x"}, "http"),
     ({"BINDROP_DISK_THRESHOLD": "200"}, "percentage")],
)
def test_bad_settings_are_named(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        load_care_settings(Settings(root=tmp_path), env)


def test_over_threshold_picks_the_filesystems_at_or_above_it() -> None:
    full = Filesystem("/", 100, 90, 10, ("data",))
    roomy = Filesystem("/backup", 100, 20, 80, ("backups",))
    report = DiskReport("now", (full, roomy), {}, {})
    assert over_threshold(report, 85) == [full]
    assert over_threshold(report, 90) == [full]
    assert over_threshold(report, 95) == []
