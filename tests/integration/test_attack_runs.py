"""Process types, release commands and one-off runs as an attacker (or a broken release)
would use them, against a real hub on the private systemd."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest

from bindrop.errors import NotReady
from bindrop.hub.commands import Deploy, Stop
from bindrop.hub.hub import Hub
from bindrop.machine import Machine
from bindrop.settings import Settings
from bindrop.store import AppConfig, BlobStore, Store

from .test_processes import active_units, bundle, upload

pytestmark = pytest.mark.integration

RELEASE_TIMEOUT_S = 4.0
ENDLESS = "#!/bin/sh\necho 'migration: waiting for a lock'\nexec sleep 100000\n"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, release_timeout_s=RELEASE_TIMEOUT_S)


async def test_a_release_command_that_never_ends_is_stopped_and_the_app_can_act_again(
        hub: Hub, store: Store, blobs: BlobStore, machine: Machine, tmp_path: Path) -> None:
    store.create_app(AppConfig(name="stuck", hosts=("stuck.test",)))
    good = await upload(hub, "stuck", bundle(tmp_path, "one"))
    await hub.call("stuck", Deploy(str(good.number)))
    bad = await upload(hub, "stuck", bundle(tmp_path, "two", ENDLESS))
    started = time.monotonic()
    with pytest.raises(NotReady) as failed:
        async with asyncio.timeout(RELEASE_TIMEOUT_S + 60):
            await hub.call("stuck", Deploy(str(bad.number)))
    assert time.monotonic() - started < RELEASE_TIMEOUT_S + 60
    assert "waiting for a lock" in failed.value.message
    assert "time" in failed.value.message, failed.value.message  # says it ran out of time
    # The old release serves; nothing of the release command is left; the actor is free.
    assert store.get_app("stuck").current_release == good.number
    assert not [u for u in active_units(machine, "stuck") if "_release" in u]
    async with asyncio.timeout(60):
        await hub.call("stuck", Stop())
