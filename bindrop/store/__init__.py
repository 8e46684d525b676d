"""bindrop's desired config and history (SQLite) and its uploaded files (the blob store).

The hub is the only writer: it opens one ``Store`` and one ``BlobStore`` and passes them to
whoever needs them. SQLite never holds run-state. Everything here validates at its edge: a bad
value raises ``InvalidInput`` and writes nothing.
"""

from bindrop.store.apps import AppConfig, DesiredState, validate_app
from bindrop.store.blobs import BlobInfo, BlobStore
from bindrop.store.bundles import bundles_dir, gc_bundles, unpack_bundle
from bindrop.store.content import check_executable_content, kind_of, read_head, sniff_kind
from bindrop.store.db import Store
from bindrop.store.env import mask_env, validate_env
from bindrop.store.events import Event
from bindrop.store.releases import Release, ReleaseKind, ReleaseStatus

__all__ = [
    "AppConfig",
    "BlobInfo",
    "BlobStore",
    "DesiredState",
    "Event",
    "Release",
    "ReleaseKind",
    "ReleaseStatus",
    "Store",
    "bundles_dir",
    "check_executable_content",
    "gc_bundles",
    "kind_of",
    "mask_env",
    "read_head",
    "sniff_kind",
    "unpack_bundle",
    "validate_app",
    "validate_env",
]
