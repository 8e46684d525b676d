"""A backup's manifest: what it holds, each part's size and sha256. Parsing is pure.

A backup is a folder (or an S3 prefix) named by its id, holding compressed parts and
``manifest.json``. The manifest is written last: a backup without one is not complete and is
never listed, verified or restored.

Ids are ``<UTC time>-server`` (bindrop's database and every app) or ``<UTC time>-app-<app>``
(one app), so that names sort by time and say their scope.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bindrop.domain.names import validate_app_name
from bindrop.errors import InvalidInput

MANIFEST = "manifest.json"
FORMAT = 1
SERVER_SCOPE = "server"
ID = re.compile(r"(?P<at>\d{8}T\d{6}\.\d{3}Z)-(?:server|app-(?P<app>[a-z0-9][a-z0-9-]*))")
TIME_FORMAT = "%Y%m%dT%H%M%S.%f"
PART_NAME = re.compile(r"(bindrop|server|app-[a-z0-9][a-z0-9-]*)\.tar\.gz")
BINDROP_PART = "bindrop.tar.gz"


@dataclass(frozen=True)
class Part:
    """One compressed archive of a backup: bindrop's database, or one app's data directory.

    ``databases``: the SQLite files in it (paths inside the archive), each a snapshot taken
    with the online backup API.
    """

    name: str
    size: int
    sha256: str
    app: str | None = None
    databases: tuple[str, ...] = ()
    files: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["databases"] = list(self.databases)
        return data


@dataclass(frozen=True)
class Manifest:
    id: str
    created_at: str
    app: str | None
    parts: tuple[Part, ...] = field(default_factory=tuple)
    format: int = FORMAT

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)

    def part_for(self, app: str) -> Part | None:
        return next((p for p in self.parts if p.app == app), None)

    def to_json(self) -> str:
        return json.dumps({"format": self.format, "id": self.id, "created_at": self.created_at,
                           "app": self.app, "parts": [p.to_dict() for p in self.parts]},
                          indent=2, sort_keys=True) + "\n"

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": self.created_at, "app": self.app,
                "size": self.size, "apps": sorted(p.app for p in self.parts if p.app)}


def new_backup_id(now: datetime, app: str | None) -> str:
    """``20261128T081500.123Z-server`` or ``…-app-blog``. Pure."""
    stamp = now.astimezone(UTC).strftime(TIME_FORMAT)[:-3] + "Z"
    return f"{stamp}-{SERVER_SCOPE}" if app is None else f"{stamp}-app-{validate_app_name(app)}"


def parse_backup_id(text: str) -> tuple[datetime, str | None]:
    """``(when, app or None)``; ``InvalidInput`` for anything else (no path can hide in one)."""
    match = ID.fullmatch(text)
    if match is None:
        raise InvalidInput(f"{text!r} is not a backup id; `bindrop backup list` shows them")
    at = datetime.strptime(match["at"][:-1], TIME_FORMAT).replace(tzinfo=UTC)
    return at, match["app"]


def parse_manifest(text: str, expected_id: str | None = None) -> Manifest:
    """The manifest in ``text``; ``InvalidInput`` saying what is wrong with it."""
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise InvalidInput(f"manifest format {data.get('format')!r} is not {FORMAT}")
        backup_id = str(data["id"])
        parse_backup_id(backup_id)
        if expected_id is not None and backup_id != expected_id:
            raise InvalidInput(f"the manifest is of backup {backup_id}, not {expected_id}")
        parts = []
        for raw in data["parts"]:
            name = str(raw["name"])
            if not PART_NAME.fullmatch(name):
                raise InvalidInput(f"part name {name!r} is not valid")
            app = raw.get("app")
            if app is not None:
                validate_app_name(app)
            size, digest = raw["size"], str(raw["sha256"])
            if not isinstance(size, int) or size < 0 or not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise InvalidInput(f"part {name} has no valid size and sha256")
            parts.append(Part(name, size, digest, app, tuple(str(d) for d in raw["databases"]),
                              int(raw.get("files", 0))))
        app = data.get("app")
        return Manifest(backup_id, str(data["created_at"]), app, tuple(parts))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"the manifest is not valid: {exc}") from None


def file_digest(path: Path) -> tuple[int, str]:
    """``(size, sha256 hex)`` of a file, read in chunks."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def check_parts(manifest: Manifest, folder: Path, names: Iterable[str] | None = None) -> list[str]:
    """Problems with the parts in ``folder`` (all, or ``names``): missing, wrong size or
    sha256. Empty when they match the manifest."""
    wanted = set(names) if names is not None else None
    problems = []
    for part in manifest.parts:
        if wanted is not None and part.name not in wanted:
            continue
        path = folder / part.name
        if not path.is_file():
            problems.append(f"{part.name} is missing")
            continue
        size, digest = file_digest(path)
        if size != part.size:
            problems.append(f"{part.name} is {size} bytes, the manifest says {part.size}")
        elif digest != part.sha256:
            problems.append(f"{part.name} does not match its sha256 in the manifest")
    return problems
