"""Hub fixtures: a settings root visible inside the session machine, a store, a hub."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bindrop.api import ApiServer, serve_api
from bindrop.errors import BindropError
from bindrop.hub.commands import Stop
from bindrop.hub.hub import Hub
from bindrop.hub.logs import JournalReader
from bindrop.machine import Machine
from bindrop.settings import Settings
from bindrop.store import BlobStore, Store

from .hubkit import API_UPLOAD_LIMIT, SRV_BASE


@pytest.fixture(scope="session")
def srv_dir() -> Iterator[Path]:
    base = SRV_BASE / f"bindrop-tests-{os.getpid()}"
    base.mkdir(parents=True, mode=0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def settings(machine: Machine, srv_dir: Path) -> Settings:
    root = srv_dir / uuid.uuid4().hex[:8]
    root.mkdir(mode=0o755)
    return Settings(root=root, bus_address=machine.bus_address, drain_timeout=5.0)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings) as s:
        yield s


@pytest.fixture
def blobs(settings: Settings) -> BlobStore:
    return BlobStore.open(settings)


@pytest.fixture
def journal(machine: Machine) -> JournalReader:
    return JournalReader(machine.nsenter_argv([]))


@pytest.fixture
async def hub(settings: Settings, store: Store, blobs: BlobStore,
              journal: JournalReader) -> AsyncIterator[Hub]:
    """A hub in this process, on the machine's bus. Stops every app it knows at the end."""
    the_hub = Hub(settings, store, blobs, journal=journal)
    await the_hub.start()
    try:
        yield the_hub
    finally:
        await stop_all(the_hub)
        await the_hub.close()


async def stop_all(hub: Hub) -> None:
    for app in hub.store.list_apps(include_system=True):
        with contextlib.suppress(BindropError):
            await hub.call(app.name, Stop())


@pytest.fixture
async def api(hub: Hub, settings: Settings) -> AsyncIterator[ApiServer]:
    """The control API of ``hub`` on its unix socket and on a free TCP port (tokens)."""
    api_settings = dataclasses.replace(settings, api_port=0, upload_limit=API_UPLOAD_LIMIT)
    async with serve_api(hub, api_settings) as server:
        yield server
