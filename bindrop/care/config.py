"""What server care is told: where backups go, how many to keep, the disk threshold, S3.

Read from ``/etc/bindrop/care.env`` (``KEY=VALUE`` lines, ``#`` comments; keep it mode 0600:
it holds the S3 keys), and overridden by the same ``BINDROP_*`` variables in the environment.
The S3 secret is kept out of ``repr`` so it never reaches a log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bindrop.errors import InvalidInput
from bindrop.settings import Settings

CARE_FILE = "care.env"
DEFAULT_KEEP_DAILY = 7
DEFAULT_KEEP_WEEKLY = 4
DEFAULT_DISK_THRESHOLD = 85.0
#: Where systemd keeps the data of DynamicUser= apps (StateDirectory=bindrop/apps/<app>).
DEFAULT_APPS_DATA = "/var/lib/private/bindrop/apps"


@dataclass(frozen=True)
class S3Config:
    """An S3-compatible bucket. ``endpoint`` None: AWS itself."""

    bucket: str
    prefix: str = "bindrop"
    endpoint: str | None = None
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)

    def key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))

    def describe(self) -> dict[str, str | None]:
        """Where the bucket is, never the keys (for manifests and reports). Pure."""
        return {"bucket": self.bucket, "prefix": self.prefix, "endpoint": self.endpoint,
                "region": self.region}

    def blob_key(self, sha256: str) -> str:
        """Where a release blob lives in the bucket: ``<prefix>/blobs/sha256/<sha256>``."""
        return self.key("blobs", "sha256", sha256)


@dataclass(frozen=True)
class CareSettings:
    backup_dir: Path
    apps_data_dir: Path
    keep_daily: int = DEFAULT_KEEP_DAILY
    keep_weekly: int = DEFAULT_KEEP_WEEKLY
    s3: S3Config | None = None
    disk_threshold: float = DEFAULT_DISK_THRESHOLD
    webhook_url: str | None = None
    #: The journal's directory, for ``bindrop disk``.
    journal_dir: Path = Path("/var/log/journal")

    def app_data_dir(self, app: str) -> Path:
        return self.apps_data_dir / app


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines; blank lines and ``#`` comments skipped; optional quotes. Pure."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        if not sep or not key.replace("_", "").isalnum():
            raise InvalidInput(f"{CARE_FILE} line {number} is not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def load_care_settings(settings: Settings, environ: Mapping[str, str]) -> CareSettings:
    """Care settings from ``settings.etc_dir/care.env`` overridden by ``environ``.

    ``InvalidInput`` names the bad value (never a secret's value)."""
    path = settings.etc_dir / CARE_FILE
    values: dict[str, str] = {}
    if path.exists():
        values = parse_env_file(path.read_text())
    values.update({k: v for k, v in environ.items() if k.startswith("BINDROP_")})

    def get(key: str) -> str | None:
        value = values.get(f"BINDROP_{key}")
        return value if value else None

    s3 = None
    if get("S3_BUCKET"):
        s3 = S3Config(bucket=get("S3_BUCKET") or "", prefix=get("S3_PREFIX") or "bindrop",
                      endpoint=get("S3_ENDPOINT"), region=get("S3_REGION") or "us-east-1",
                      access_key=get("S3_ACCESS_KEY_ID"), secret_key=get("S3_SECRET_ACCESS_KEY"))
    backup_dir = get("BACKUP_DIR")
    apps_data = get("APPS_DATA")
    journal = get("JOURNAL_DIR")
    return CareSettings(
        backup_dir=Path(backup_dir) if backup_dir else settings.backups_dir,
        apps_data_dir=Path(apps_data) if apps_data else settings.root / DEFAULT_APPS_DATA[1:],
        keep_daily=_count("BINDROP_BACKUP_KEEP_DAILY", get("BACKUP_KEEP_DAILY"),
                          DEFAULT_KEEP_DAILY),
        keep_weekly=_count("BINDROP_BACKUP_KEEP_WEEKLY", get("BACKUP_KEEP_WEEKLY"),
                           DEFAULT_KEEP_WEEKLY),
        s3=s3,
        disk_threshold=parse_threshold(get("DISK_THRESHOLD")),
        webhook_url=_url(get("DISK_WEBHOOK")),
        journal_dir=Path(journal) if journal else Path("/var/log/journal"),
    )


def _count(name: str, text: str | None, default: int) -> int:
    if text is None:
        return default
    if not text.strip().isdigit():
        raise InvalidInput(f"{name} must be a whole number (0 or more), not {text!r}")
    return int(text)


def parse_threshold(text: str | None) -> float:
    """A percentage such as ``85`` or ``85%``, above 0 and at most 100."""
    if text is None:
        return DEFAULT_DISK_THRESHOLD
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        value = -1.0
    if not 0 < value <= 100:
        raise InvalidInput(f"the disk threshold must be a percentage from 1 to 100, not {text!r}")
    return value


def _url(text: str | None) -> str | None:
    if text is not None and not text.startswith(("http://", "https://")):
        raise InvalidInput(f"BINDROP_DISK_WEBHOOK must be an http(s):// URL, not {text!r}")
    return text
