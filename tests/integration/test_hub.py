"""The hub against a real systemd: deploy, crash, give up, supersede, independence."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from bindrop.errors import Cancelled, NotReady
from bindrop.hub.commands import Deploy, Restart, Rollback, Start, Stop
from bindrop.hub.hub import Hub
from bindrop.hub.state import AppRunState, is_up
from bindrop.machine import Machine
from bindrop.store import AppConfig, BlobStore, Store

from .hubkit import HANG, HELLO, add_app, http_get, in_state, wait_for_app

pytestmark = pytest.mark.integration


async def test_deploy_runs_the_release_on_a_fresh_port_and_routes_it(
    hub: Hub, store: Store, blobs: BlobStore
) -> None:
    add_app(store, blobs, "web", "--label", "one")
    outcome = await hub.call("web", Deploy(1))
    assert outcome.unit == "bindrop-app-web-1.service" and outcome.port
    status, body = await http_get(outcome.port)
    assert status == 200 and body.startswith("one from web release 1")
    view = hub.state.app("web")
    assert view is not None and view.state == AppRunState.RUNNING and view.main_pid > 0
    assert store.get_app("web").current_release == 1
    assert [r.status for r in store.list_releases("web")] == ["live"]


async def test_a_crash_is_counted_and_systemd_brings_the_app_back(
    hub: Hub, store: Store, blobs: BlobStore, machine: Machine
) -> None:
    add_app(store, blobs, "crashy")
    await hub.call("crashy", Deploy(1))
    before = hub.state.app("crashy")
    assert before is not None
    machine.exec("kill", "-9", str(before.main_pid))
    after = await wait_for_app(hub, "crashy", lambda v: v is not None and v.n_restarts >= 1
                               and v.state == AppRunState.RUNNING)
    assert after is not None and after.main_pid != before.main_pid


async def test_a_crash_loop_ends_in_a_clear_gave_up_state(
    hub: Hub, store: Store, blobs: BlobStore
) -> None:
    # Up long enough to be found ready, then restarts that fail at once: systemd's start
    # limit (5 in 10 s) is hit with seconds to spare, even on a loaded machine.
    add_app(store, blobs, "loopy", "--crash-after", "1", "--fail-restarts", uuid.uuid4().hex)
    await hub.call("loopy", Deploy(1))
    view = await wait_for_app(hub, "loopy", in_state(AppRunState.CRASH_LOOPING))
    assert view is not None and view.problem is not None
    assert view.problem.startswith("exited with status 1")
    assert view.route is None
    await asyncio.sleep(0)  # let the give-up event be recorded
    async with asyncio.timeout(HANG):
        while not [e for e in store.list_events("loopy") if e.kind == "app_gave_up"]:
            await asyncio.sleep(0.05)
    event = next(e for e in store.list_events("loopy") if e.kind == "app_gave_up")
    assert "crashing on purpose" in "\n".join(event.data["log"])  # type: ignore[index]


async def test_a_release_that_exits_at_once_leaves_the_old_one_serving(
    hub: Hub, store: Store, blobs: BlobStore
) -> None:
    add_app(store, blobs, "steady", "--label", "good")
    good = await hub.call("steady", Deploy(1))
    add_app(store, blobs, "steady", "--fail")
    with pytest.raises(NotReady) as failed:
        await hub.call("steady", Deploy(2))
    assert "exited with status 1" in failed.value.message
    assert "failing on purpose" in failed.value.message  # the last log lines
    assert good.port is not None
    status, body = await http_get(good.port)
    assert status == 200 and body.startswith("good from steady release 1")
    assert store.get_release("steady", 2).status == "failed"
    assert store.get_app("steady").current_release == 1
    up = [u.name for u in hub.state.units_of("steady") if is_up(u)]
    assert up == ["bindrop-app-steady-1.service"]


async def test_restart_replaces_the_unit_with_no_gap_and_keeps_the_data(
    hub: Hub, store: Store, blobs: BlobStore
) -> None:
    add_app(store, blobs, "counter")
    first = await hub.call("counter", Deploy(1))
    assert first.port is not None
    await http_get(first.port)
    second = await hub.call("counter", Restart())
    assert second.unit == "bindrop-app-counter-1.1.service"
    assert second.stopped == ("bindrop-app-counter-1.service",)
    assert second.port is not None
    _, body = await http_get(second.port)
    assert "visit 2" in body  # the data directory outlived the first unit


async def test_stop_supersedes_a_queued_restart_and_cancels_the_readiness_wait(
    hub: Hub, store: Store, blobs: BlobStore
) -> None:
    add_app(store, blobs, "slow", "--listen-after", "60")
    deploy = hub.submit("slow", Deploy(1))
    await wait_for_app(hub, "slow", in_state(AppRunState.STARTING))
    restart = hub.submit("slow", Restart())
    stop = hub.submit("slow", Stop())
    with pytest.raises(Cancelled, match="superseded by stop"):
        await restart
    with pytest.raises(Cancelled, match="cancelled by stop"):
        await deploy
    outcome = await stop
    assert outcome.action == "stop"
    assert hub.state.units_of("slow") == []


async def test_a_stuck_app_does_not_delay_another(
    hub: Hub, store: Store, blobs: BlobStore
) -> None:
    add_app(store, blobs, "stuck", "--listen-after", "600", health_timeout_s=120)
    add_app(store, blobs, "quick")
    stuck = hub.submit("stuck", Deploy(1))
    await wait_for_app(hub, "stuck", in_state(AppRunState.STARTING))
    outcome = await asyncio.wait_for(hub.call("quick", Deploy(1)), HANG)
    assert outcome.release == "1" and not stuck.done()
    await hub.call("stuck", Stop())
    with pytest.raises(Cancelled):
        await stuck


async def test_start_after_stop_runs_the_current_release_again(
    hub: Hub, store: Store, blobs: BlobStore
) -> None:
    add_app(store, blobs, "again")
    await hub.call("again", Deploy(1))
    await hub.call("again", Stop())
    assert store.get_app("again").desired_state == "stopped"
    stopped = hub.state.app("again")  # systemd may not have collected the unit yet
    assert stopped is None or (stopped.state == AppRunState.STOPPED and stopped.route is None)
    outcome = await hub.call("again", Start())
    # A fresh unit of release 1 (named 1.1 if systemd had not yet collected the old one).
    assert outcome.release == "1" and outcome.unit is not None
    assert outcome.unit.startswith("bindrop-app-again-1")
    assert (await http_get(outcome.port or 0))[0] == 200
    assert store.get_app("again").desired_state == "running"


async def test_hub_close_leaves_apps_running_and_a_new_hub_adopts_them(
    hub: Hub, store: Store, blobs: BlobStore
) -> None:
    add_app(store, blobs, "kept")
    await hub.call("kept", Deploy(1))
    view = hub.state.app("kept")
    assert view is not None
    second = Hub(hub.settings, store, blobs, journal=hub.journal)
    steps = await second.start()
    try:
        adopted = second.state.app("kept")
        assert adopted is not None and adopted.state == AppRunState.RUNNING
        assert (adopted.main_pid, adopted.route) == (view.main_pid, view.route)
        assert [type(s).__name__ for s in steps] == ["Adopt"]
    finally:
        await second.close()


async def test_a_failed_restart_keeps_the_serving_release_live(
    hub: Hub, store: Store, blobs: BlobStore
) -> None:
    add_app(store, blobs, "fickle")
    first = await hub.call("fickle", Deploy(1))
    store.set_env("fickle", {"HELLO_FAIL": "1"})  # the next unit of release 1 exits at once
    with pytest.raises(NotReady, match="exited with status 1"):
        await hub.call("fickle", Restart())
    assert store.get_release("fickle", 1).status == "live"
    assert first.port is not None and (await http_get(first.port))[0] == 200


async def test_liveness_restarts_an_app_that_stops_answering(
    hub: Hub, store: Store, blobs: BlobStore
) -> None:
    add_app(store, blobs, "hangs", "--hang-after", "1", health_path="/",
            liveness_interval_s=0.3)
    first = await hub.call("hangs", Deploy(1))
    # Three failed checks in a row (each times out after 2 s) make the hub restart it.
    view = await wait_for_app(hub, "hangs", lambda v: v is not None and v.route is not None
                              and v.route.unit != first.unit)
    assert view is not None and view.route is not None
    assert view.route.unit == "bindrop-app-hangs-1.1.service"
    kinds = [e.kind for e in store.list_events("hangs")]
    assert "app_unresponsive" in kinds


async def test_rollback_serves_the_previous_build_again(
    hub: Hub, store: Store, blobs: BlobStore
) -> None:
    add_app(store, blobs, "back", "--label", "one")
    await hub.call("back", Deploy(1))
    add_app(store, blobs, "back", "--label", "two")
    await hub.call("back", Deploy(2))
    outcome = await hub.call("back", Rollback())
    assert outcome.release == "1" and outcome.port is not None
    _, body = await http_get(outcome.port)
    assert body.startswith("one from back release 1")
    assert {r.number: r.status for r in store.list_releases("back")} == {1: "live",
                                                                         2: "previous"}
    assert store.get_app("back").current_release == 1


async def test_old_releases_and_their_files_are_collected_after_a_deploy(
    hub: Hub, store: Store, blobs: BlobStore, tmp_path: Path
) -> None:
    keep = hub.settings.releases_kept
    shas = []
    for n in range(1, keep + 3):
        variant = tmp_path / f"hello-{n}.py"  # different bytes: a blob per release
        variant.write_bytes(HELLO.read_bytes() + f"# build {n}\n".encode())
        variant.chmod(0o755)
        blob = blobs.put_file(variant, max_size=1 << 20)
        shas.append(blob.sha256)
        if n == 1:
            store.create_app(AppConfig(name="gc", hosts=("gc.test",)))
        store.add_release("gc", blob.sha256, blob.size, "binary", [], "tests")
        await hub.call("gc", Deploy(n))
    numbers = [r.number for r in store.list_releases("gc")]
    assert numbers == list(range(keep + 2, 2, -1))  # the newest `keep`, newest first
    assert [blobs.exists(sha) for sha in shas] == [False, False] + [True] * keep
