"""What the server is: versions, apps, disk."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bindrop import __version__
from bindrop.api.care import care_summary
from bindrop.api.keys import HUB, SETTINGS, STORE
from bindrop.api.tls import tls_summary
from bindrop.version import build_commit


def _blob_bytes(root: Path) -> int:
    try:
        return sum(e.stat().st_size for e in os.scandir(root) if e.is_file())
    except FileNotFoundError:
        return 0


async def server_info(request: web.Request) -> dict[str, Any]:
    hub, store = request.app[HUB], request.app[STORE]
    settings = request.app[SETTINGS]
    disk = shutil.disk_usage(settings.state_dir)
    return {
        "version": __version__,
        "commit": build_commit(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "machine": platform.machine(),
        "apps": len(store.list_apps()),
        "upload_limit": settings.upload_limit,
        # Proxies following the hub's routes now (each confirms every route swap).
        "proxies": len(hub.router.peers()),
        "disk": {"path": str(settings.state_dir), "total": disk.total, "used": disk.used,
                 "free": disk.free, "blobs": _blob_bytes(settings.blobs_dir)},
        # The newest backup, failure and disk check (events recorded by bindrop's timers).
        "care": care_summary(store),
        # Automatic HTTPS: names by state, the newest certificate event and failure.
        "tls": tls_summary(hub.tls, store),
    }
