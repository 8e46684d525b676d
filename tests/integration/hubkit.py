"""Helpers for hub tests: an app root the machine can see, the example app, a tiny client."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from bindrop.hub.hub import Hub
from bindrop.hub.state import AppRunState, AppView
from bindrop.store import AppConfig, BlobStore, Release, Store

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello" / "hello.py"
HANG = 45.0  # seconds before a wait counts as a hang, not a slow machine
API_UPLOAD_LIMIT = 1024 * 1024  # the test API's upload limit (the server's default is 1 GiB)

#: Host directory the test hubs keep their files in. App units must execute blobs from it, so
#: it must be visible inside the machine at the same path and not hidden from the sandboxed
#: app: not under /tmp or /var/tmp (PrivateTmp), /root or /home (ProtectHome), /etc or /var
#: (overlaid inside the machine).
SRV_BASE = Path(os.environ.get("BINDROP_TEST_SRV", "/srv"))


def add_app(store: Store, blobs: BlobStore, name: str, *args: str,
            **config: object) -> Release:
    """Create ``name`` (if new) and add a release of the example app run with ``args``."""
    try:
        store.get_app(name)
    except Exception:
        store.create_app(AppConfig(name=name, hosts=(f"{name}.test",), **config))  # type: ignore[arg-type]
    blob = blobs.put_file(HELLO, max_size=1 << 20)
    return store.add_release(name, blob.sha256, blob.size, "binary", list(args), "tests")


async def http_get(port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, str]:
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
        writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return int(head.split(" ", 2)[1]), body


async def wait_for_app(hub: Hub, app: str, predicate: Callable[[AppView | None], bool],
                       timeout: float = HANG) -> AppView | None:
    """Wait, on the state store's change stream (no polling), until ``predicate`` holds."""
    async with asyncio.timeout(timeout):
        while True:
            view = hub.state.app(app)
            if predicate(view):
                return view
            await hub.state.changed()


def in_state(state: AppRunState) -> Callable[[AppView | None], bool]:
    return lambda view: view is not None and view.state == state
