"""The bundle's manifest and the names inside a bundle. Pure: no IO.

A bundle is an uncompressed tar stream:

    bindrop.db                  snapshot of bindrop's database (SQLite online backup API)
    blobs/<sha256>              the blobs of every release the database keeps
    apps/<app>/<path>           each app's data (SQLite databases as backup-API snapshots)
    etc/<path>                  /etc/bindrop: settings, TLS certificates and keys
    manifest.json               last: every file above with its size and sha256

The manifest comes last because sums are known only once a file has streamed through; an
importer therefore reads the whole stream before it may trust any of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from bindrop.domain.names import validate_app_name
from bindrop.errors import InvalidInput

FORMAT = "bindrop-bundle"
VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "bindrop.db"
TOP_DIRS = ("blobs", "apps", "etc")
#: Largest manifest an importer reads into memory.
MANIFEST_LIMIT = 64 * 1024 * 1024

#: "bucket-blob": listed, not in the tar; the importer fetches it from ``Manifest.bucket``.
FileKind = Literal["database", "blob", "bucket-blob", "sqlite", "file"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class BundleFile:
    """One file of the bundle: its name in the tar, size, sha256 and mode."""

    path: str
    size: int
    sha256: str
    kind: FileKind
    mode: int = 0o644


@dataclass(frozen=True)
class BundleApp:
    """An app as the exported database holds it: enough to check it on the other side."""

    name: str
    hosts: tuple[str, ...]
    desired_state: str
    current_release: int | None
    system: bool = False
    health_path: str | None = None

    @property
    def should_run(self) -> bool:
        return self.desired_state == "running" and self.current_release is not None


@dataclass(frozen=True)
class Manifest:
    created_at: str
    source: str
    bindrop_version: str
    files: tuple[BundleFile, ...]
    apps: tuple[BundleApp, ...]
    #: Blobs a release names that were not on the source's disk (that release cannot run).
    missing_blobs: tuple[str, ...] = ()
    #: Paths under an app's data that are neither files nor directories (not exported).
    skipped: tuple[str, ...] = ()
    #: Where the "bucket-blob" files are (bucket, prefix, endpoint, region; no keys).
    bucket: Mapping[str, Any] | None = None
    #: The source's ``bindrop install`` options (``InstallOptions.to_dict``); None: unknown.
    install: Mapping[str, Any] | None = None
    format: str = FORMAT
    version: int = VERSION


def render_manifest(manifest: Manifest) -> bytes:
    data = asdict(manifest)
    data["bucket"] = dict(manifest.bucket) if manifest.bucket is not None else None
    data["install"] = dict(manifest.install) if manifest.install is not None else None
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def parse_manifest(raw: bytes) -> Manifest:
    """The manifest in ``raw``; ``InvalidInput`` saying what is wrong with it."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"the bundle's manifest is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput("this is not a bindrop bundle (its manifest names no "
                           f"{FORMAT!r} format)")
    if data.get("version") != VERSION:
        raise InvalidInput(f"bundle format version {data.get('version')!r} is not one this "
                           f"bindrop reads ({VERSION}); import it with the bindrop that made it")
    try:
        files = tuple(BundleFile(**f) for f in data["files"])
        apps = tuple(BundleApp(**{**a, "hosts": tuple(a["hosts"])}) for a in data["apps"])
        manifest = Manifest(
            created_at=str(data["created_at"]), source=str(data["source"]),
            bindrop_version=str(data["bindrop_version"]), files=files, apps=apps,
            missing_blobs=tuple(data.get("missing_blobs", ())),
            skipped=tuple(data.get("skipped", ())),
            bucket=data.get("bucket"),
            install=data.get("install") if isinstance(data.get("install"), dict) else None,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"the bundle's manifest is not complete ({exc!r})") from None
    if any(f.kind == "bucket-blob" for f in files) and not (
            isinstance(manifest.bucket, dict) and manifest.bucket.get("bucket")):
        raise InvalidInput("the bundle's manifest lists blobs in a bucket but names no bucket")
    for f in files:
        check_member_name(f.path)
        if not isinstance(f.size, int) or f.size < 0 or not _SHA256.fullmatch(str(f.sha256)):
            raise InvalidInput(f"the bundle's manifest has a bad entry for {f.path!r}")
    return manifest


def check_member_name(name: str) -> PurePosixPath:
    """A member name an importer may write below its staging directory: relative, no ``..``,
    under a known top directory (or one of the two top files). ``InvalidInput`` otherwise."""
    path = PurePosixPath(name)
    parts = path.parts
    if (not parts or path.is_absolute() or any(p in ("", ".", "..") for p in parts)
            or "\x00" in name or "\\" in name):
        raise InvalidInput(f"the bundle holds a file with an unsafe name: {name!r}")
    if len(parts) == 1 and name in (DATABASE, MANIFEST, *TOP_DIRS):
        return path
    if parts[0] not in TOP_DIRS:
        raise InvalidInput(f"the bundle holds a file bindrop does not know: {name!r}")
    if parts[0] == "blobs" and (len(parts) != 2 or not _SHA256.fullmatch(parts[1])):
        raise InvalidInput(f"the bundle holds a blob with a bad name: {name!r}")
    if parts[0] == "apps":
        try:
            validate_app_name(parts[1])
        except InvalidInput:
            raise InvalidInput(f"the bundle holds data of an app with a bad name: {name!r}") \
                from None
    return path


def compare_files(listed: Iterable[BundleFile], read: Mapping[str, tuple[int, str]]) -> list[str]:
    """What differs between the manifest and the files read (``path -> (size, sha256)``):
    a list of problems a person can read, empty when the bundle is whole."""
    problems = []
    wanted = {f.path: f for f in listed}
    for path, f in sorted(wanted.items()):
        got = read.get(path)
        if got is None:
            problems.append(f"{path} is missing")
        elif got != (f.size, f.sha256):
            problems.append(f"{path} does not match its sha256 in the manifest (damaged)")
    problems += [f"{path} is not in the manifest" for path in sorted(set(read) - set(wanted))]
    return problems
