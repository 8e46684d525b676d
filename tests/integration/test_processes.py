"""Process types and instances (issue 17) against a real systemd, through the proxy:
a Procfile bundle (web + worker + release), scale, balancing, a killed instance, a deploy
under load, a failing release command, a hub restart."""

from __future__ import annotations

import asyncio
import io
import shutil
import tarfile
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bindrop.errors import NotReady
from bindrop.hub.commands import Deploy
from bindrop.hub.hub import Hub
from bindrop.hub.state import AppRunState, is_up
from bindrop.machine import Machine
from bindrop.proxy.server import ProxyServer
from bindrop.store import AppConfig, BlobStore, Release, Store
from tests.proxy.kit import HubEnd, Visitors, get_text, instance_of

from .hubkit import HANG, HELLO, wait_for_app
from .test_proxy_deploy import linked_hub, proxy  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration

WORKER = "#!/bin/sh\necho \"worker $BINDROP_INSTANCE of release $BINDROP_RELEASE\"\n" \
         "exec sleep 3600\n"
MIGRATE = "#!/bin/sh\necho \"migrating to release $BINDROP_RELEASE\"\n" \
          "echo \"$BINDROP_RELEASE\" > \"$STATE_DIRECTORY/migrated\"\n"
FAILING = "#!/bin/sh\necho 'migration: table users is locked'\nexit 4\n"


def bundle(tmp: Path, label: str, release_script: str = MIGRATE) -> bytes:
    return tar_gz({"hello.py": HELLO.read_text(), "worker.sh": WORKER,
                   "migrate.sh": release_script,
                   "Procfile": f"web: ./hello.py --label {label}\nworker: ./worker.sh\n"
                               "release: ./migrate.sh\n"})


def tar_gz(files: dict[str, str]) -> bytes:
    """A bundle of ``files``: each executable but the Procfile."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if name != "Procfile" else 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


async def upload(hub: Hub, app: str, data: bytes) -> Release:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    return await hub.config.upload_release(app, chunks(), kind="bundle", command=[],
                                           created_by="tests")


async def get(port: int, host: str) -> tuple[int, str, str]:
    """Status, body and the instance (X-Instance) that answered."""
    status, head, body = await get_text(port, host)
    return status, body, instance_of(head)


def active_units(machine: Machine, app: str) -> list[str]:
    out = machine.exec("systemctl", "list-units", "--state=active", "--plain", "--no-legend",
                       f"bindrop-app-{app}-*").stdout.split()
    return sorted(w for w in out if w.startswith("bindrop-app-"))


async def test_a_procfile_bundle_runs_web_and_worker_scales_balances_and_survives_a_kill(
        linked_hub: tuple[Hub, HubEnd], proxy: ProxyServer, store: Store,  # noqa: F811
        blobs: BlobStore, machine: Machine, tmp_path: Path) -> None:
    hub, _ = linked_hub
    store.create_app(AppConfig(name="shop", hosts=("shop.test",)))
    first = await upload(hub, "shop", bundle(tmp_path, "one"))
    assert dict(first.processes or {}) == {"web": ("./hello.py", "--label", "one"),
                                           "worker": ("./worker.sh",)}
    assert first.release_command == ("./migrate.sh",)
    outcome = await hub.call("shop", Deploy(1))
    assert outcome.unit == "bindrop-app-shop-1.service"
    assert "migrating to release 1" in outcome.release_log  # the deploy's own output
    assert active_units(machine, "shop") == ["bindrop-app-shop-1.service",
                                             "bindrop-app-shop-1_worker_1.service"]
    kinds = [e.kind for e in store.list_events(app="shop")]
    assert "release_command_succeeded" in kinds
    port = proxy.ports[0]
    assert (await get(port, "shop.test"))[1].startswith("one from shop release 1")

    # scale web=3 worker=1: four units, and requests reach all three web instances
    outcome = await hub.config.scale("shop", {"web": 3, "worker": 1})
    assert active_units(machine, "shop") == [
        "bindrop-app-shop-1.service", "bindrop-app-shop-1_web_2.service",
        "bindrop-app-shop-1_web_3.service", "bindrop-app-shop-1_worker_1.service"]
    seen = Counter([(await get(port, "shop.test"))[2] for _ in range(30)])
    assert set(seen) == {"web-1", "web-2", "web-3"}, seen

    # killing one web instance under a request loop fails no request
    async with Visitors(port, "shop.test", hang=HANG, settle=0.3) as visitors:
        machine.exec("systemctl", "kill", "--signal=KILL", "bindrop-app-shop-1_web_2.service")
        await asyncio.sleep(1.5)
        await wait_for_app(hub, "shop", lambda v: v is not None and len(v.serving) == 3)
        await asyncio.sleep(0.5)
    assert set(visitors.results) == {"200"}, (visitors.results, visitors.failures)
    assert visitors.instances["web-2"] > 0  # it came back into rotation

    # a new release under load: no request fails, every old unit is stopped
    await upload(hub, "shop", bundle(tmp_path, "two"))
    async with Visitors(port, "shop.test", hang=HANG, settle=0.3) as visitors:
        outcome = await hub.call("shop", Deploy(2))
    assert set(visitors.results) == {"200"}, (visitors.results, visitors.failures)
    assert len(outcome.stopped) == 4
    assert active_units(machine, "shop") == [
        "bindrop-app-shop-2.service", "bindrop-app-shop-2_web_2.service",
        "bindrop-app-shop-2_web_3.service", "bindrop-app-shop-2_worker_1.service"]

    # a failing release command stops the deploy; release 2 keeps serving
    await upload(hub, "shop", bundle(tmp_path, "three", FAILING))
    with pytest.raises(NotReady, match="table users is locked"):
        await hub.call("shop", Deploy(3))
    status, body, _ = await get(port, "shop.test")
    assert status == 200 and body.startswith("two from shop release 2")
    assert store.get_release("shop", 3).status == "failed"
    assert len(active_units(machine, "shop")) == 4

    # a hub restart adopts every instance without restarting one
    before = {u.name: u.main_pid for u in hub.state.units_of("shop") if is_up(u)}
    second = Hub(hub.settings, store, blobs, journal=hub.journal)
    await second.start()
    try:
        view = await wait_for_app(second, "shop", lambda v: v is not None
                                  and len(v.instances) == 4)
        assert view is not None and view.state == AppRunState.RUNNING
        assert {r.unit for r in view.instances} == set(before)
        assert len(view.serving) == 3
        after = {u.name: u.main_pid for u in second.state.units_of("shop") if is_up(u)}
        assert after == before
    finally:
        await second.close()

    # scaling down drains and stops the surplus; web=0 answers 503 with a clear page
    await hub.config.scale("shop", {"web": 0})
    status, body, _ = await get(port, "shop.test")
    assert status == 503 and "scaled to 0" in body
    assert active_units(machine, "shop") == ["bindrop-app-shop-2_worker_1.service"]

    # after a reboot (every transient unit gone) a starting hub brings back every instance
    await hub.config.scale("shop", {"web": 3})
    assert len(active_units(machine, "shop")) == 4
    machine.exec("systemctl", "stop", "bindrop-app-shop-*")
    await wait_for_app(hub, "shop", lambda v: v is None or not v.instances)
    booted = Hub(hub.settings, store, blobs, journal=hub.journal)
    await booted.start()
    try:
        view = await wait_for_app(booted, "shop", lambda v: v is not None
                                  and v.state == AppRunState.RUNNING and len(v.serving) == 3
                                  and len(v.instances) == 4)
        assert view is not None
        assert len(active_units(machine, "shop")) == 4
    finally:
        await booted.close()


async def test_bad_scale_requests_change_nothing(
        linked_hub: tuple[Hub, HubEnd], store: Store, tmp_path: Path) -> None:  # noqa: F811
    hub, _ = linked_hub
    store.create_app(AppConfig(name="calm", hosts=("calm.test",)))
    await upload(hub, "calm", bundle(tmp_path, "calm"))
    store.update_app("calm", current_release=1, desired_state="stopped")
    from bindrop.errors import InvalidInput
    with pytest.raises(InvalidInput, match="above the limit"):
        await hub.config.scale("calm", {"web": 17})
    with pytest.raises(InvalidInput, match="no process 'wrker'"):
        await hub.config.scale("calm", {"wrker": 1})
    assert store.get_processes("calm") == {}
    # a Procfile with a process twice (or a bad name) refuses the upload: no release, no blob
    for procfile, message in (("web: ./a\nweb: ./b\n", "declared twice"),
                              ("Web: ./a\n", "not valid")):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w:gz") as tar:
            info = tarfile.TarInfo("Procfile")
            info.size = len(procfile)
            tar.addfile(info, io.BytesIO(procfile.encode()))
        with pytest.raises(InvalidInput, match=message):
            await upload(hub, "calm", out.getvalue())
    assert [r.number for r in store.list_releases("calm")] == [1]
    assert store.referenced_blobs() == {r.sha256 for r in store.list_releases("calm")}
    assert len(list(hub.blobs.root.iterdir())) == 1
    shutil.rmtree(tmp_path, ignore_errors=True)


async def test_a_rolling_deploy_replaces_one_instance_at_a_time_under_load(
        linked_hub: tuple[Hub, HubEnd], proxy: ProxyServer, store: Store,  # noqa: F811
        machine: Machine, tmp_path: Path) -> None:
    hub, _ = linked_hub
    store.create_app(AppConfig(name="roll", hosts=("roll.test",)))
    await upload(hub, "roll", bundle(tmp_path, "one"))
    await hub.call("roll", Deploy(1))
    await hub.config.scale("roll", {"web": 2, "worker": 1})
    await upload(hub, "roll", bundle(tmp_path, "two"))
    most = 0

    def count(_change: object) -> None:
        nonlocal most
        most = max(most, sum(1 for u in hub.state.units_of("roll") if is_up(u)))

    unsubscribe = hub.state.subscribe(count)
    try:
        async with Visitors(proxy.ports[0], "roll.test", hang=HANG, settle=0.3) as visitors:
            outcome = await hub.call("roll", Deploy(2, rolling=True))
    finally:
        unsubscribe()
    assert set(visitors.results) == {"200"}, (visitors.results, visitors.failures)
    assert most == 4  # three instances, and never more than one extra
    assert len(outcome.stopped) == 3  # each old one stopped as its successor came
    assert active_units(machine, "roll") == [
        "bindrop-app-roll-2.service", "bindrop-app-roll-2_web_2.service",
        "bindrop-app-roll-2_worker_1.service"]
    assert store.get_release("roll", 2).status == "live"


def web_bundle(web: str, **scripts: str) -> bytes:
    """A bundle of hello.py, ``scripts`` (executables) and a Procfile of one web process."""
    return tar_gz({"hello.py": HELLO.read_text(), **scripts, "Procfile": f"web: {web}\n"})


async def test_a_failed_rolling_deploy_puts_the_old_release_back_on_every_instance(
        linked_hub: tuple[Hub, HubEnd], proxy: ProxyServer, store: Store,  # noqa: F811
        machine: Machine) -> None:
    hub, _ = linked_hub
    store.create_app(AppConfig(name="undo", hosts=("undo.test",)))
    await upload(hub, "undo", web_bundle("./hello.py --label one"))
    await hub.call("undo", Deploy(1))
    await hub.config.scale("undo", {"web": 3})
    # release 2 serves on web 1 and 2; web 3 exits at once
    gated = "#!/bin/sh\nif [ \"$BINDROP_INSTANCE\" -ge 3 ]; then\n" \
            "  echo 'web: cannot open the cache'; exit 3\nfi\n" \
            "exec \"$(dirname \"$0\")/hello.py\" --label two\n"
    await upload(hub, "undo", web_bundle("./web.sh", **{"web.sh": gated}))
    most = 0

    def count(_change: object) -> None:
        nonlocal most
        # the snapshot, not units_of: a listener runs before the app's unit list is updated
        units = hub.state.snapshot().units.values()
        most = max(most, sum(1 for u in units if u.name.startswith("bindrop-app-undo-")
                             and is_up(u)))

    unsubscribe = hub.state.subscribe(count)
    try:
        async with Visitors(proxy.ports[0], "undo.test", hang=HANG, settle=0.3) as visitors:
            with pytest.raises(NotReady) as failed:
                await hub.call("undo", Deploy(2, rolling=True))
    finally:
        unsubscribe()
    message = failed.value.message
    assert "undo-2_web_3" in message and "status 3" in message, message
    assert "the 2 instances already replaced run release 1 again" in message
    assert set(visitors.results) == {"200"}, (visitors.results, visitors.failures)
    assert most == 4  # three instances, and never more than one extra, undo included
    assert active_units(machine, "undo") == [
        "bindrop-app-undo-1.1.service", "bindrop-app-undo-1.1_web_2.service",
        "bindrop-app-undo-1_web_3.service"]
    view = hub.state.app("undo")
    assert view is not None and view.state == AppRunState.RUNNING
    assert sorted(r.instance for r in view.instances) == ["1.1", "1.1_web_2", "1_web_3"]
    assert store.get_app("undo").current_release == 1
    assert store.get_release("undo", 2).status == "failed"
    assert store.get_release("undo", 1).status == "live"
    assert any(e.kind == "deploy_failed" and "run release 1 again" in e.message
               for e in store.list_events(app="undo"))
    answers = Counter()
    for _ in range(12):
        status, body, instance = await get(proxy.ports[0], "undo.test")
        assert status == 200 and body.startswith("one from undo release 1"), body
        answers[instance] += 1
    assert set(answers) == {"web-1", "web-2", "web-3"}, answers


async def test_a_rolling_deploy_whose_undo_fails_says_so_and_keeps_what_serves_routed(
        linked_hub: tuple[Hub, HubEnd], proxy: ProxyServer, store: Store,  # noqa: F811
        machine: Machine) -> None:
    hub, _ = linked_hub
    store.create_app(AppConfig(name="stuck", hosts=("stuck.test",)))
    # release 1 runs in its first generation only: a fresh one (1.1) exits at once
    first = "#!/bin/sh\ncase \"$BINDROP_RELEASE\" in *.*) echo 'web: stale lock'; exit 5;; " \
            "esac\nexec \"$(dirname \"$0\")/hello.py\" --label one\n"
    await upload(hub, "stuck", web_bundle("./web.sh", **{"web.sh": first}))
    await hub.call("stuck", Deploy(1))
    await hub.config.scale("stuck", {"web": 3})
    gated = "#!/bin/sh\nif [ \"$BINDROP_INSTANCE\" -ge 3 ]; then exit 3; fi\n" \
            "exec \"$(dirname \"$0\")/hello.py\" --label two\n"
    await upload(hub, "stuck", web_bundle("./web.sh", **{"web.sh": gated}))
    async with Visitors(proxy.ports[0], "stuck.test", hang=HANG, settle=0.3) as visitors:
        with pytest.raises(NotReady) as failed:
            await hub.call("stuck", Deploy(2, rolling=True))
    message = failed.value.message
    assert "undoing it failed too" in message and "status 5" in message, message
    assert "0 instances already replaced got the old release back, 2 instances still " \
           "run release 2" in message, message
    assert set(visitors.results) == {"200"}, (visitors.results, visitors.failures)
    assert active_units(machine, "stuck") == [
        "bindrop-app-stuck-1_web_3.service", "bindrop-app-stuck-2.service",
        "bindrop-app-stuck-2_web_2.service"]
    view = hub.state.app("stuck")
    assert view is not None
    assert sorted(r.instance for r in view.instances) == ["1_web_3", "2", "2_web_2"]
    assert store.get_app("stuck").current_release == 1
    assert store.get_release("stuck", 2).status == "failed"


async def test_a_worker_systemd_gives_up_on_is_reported_while_web_serves_on(
        linked_hub: tuple[Hub, HubEnd], proxy: ProxyServer, store: Store,  # noqa: F811
        tmp_path: Path) -> None:
    hub, _ = linked_hub
    store.create_app(AppConfig(name="flaky", hosts=("flaky.test",)))
    data = bundle(tmp_path, "steady")
    # the worker starts fine, then keeps crashing until systemd stops restarting it
    crashy = "#!/bin/sh\necho 'worker: cannot reach the queue'\nsleep 0.3\nexit 2\n"
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as src, \
            tarfile.open(fileobj=out, mode="w:gz") as tar:
        for member in src.getmembers():
            body = src.extractfile(member)
            assert body is not None
            content = crashy.encode() if member.name == "worker.sh" else body.read()
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    await upload(hub, "flaky", out.getvalue())
    await hub.call("flaky", Deploy(1))
    worker = "bindrop-app-flaky-1_worker_1.service"
    view = await wait_for_app(hub, "flaky", lambda v: v is not None
                              and [u for u, _ in v.gave_up] == [worker], timeout=60)
    assert view is not None and view.state == AppRunState.RUNNING
    assert [r.process for r in view.instances] == ["web"]
    status, body, _ = await get(proxy.ports[0], "flaky.test")
    assert status == 200 and body.startswith("steady from flaky")

    async def reported() -> None:
        while not any(e.kind == "instance_gave_up" for e in store.list_events(app="flaky")):
            await asyncio.sleep(0.1)

    await asyncio.wait_for(reported(), HANG)
    event = next(e for e in store.list_events(app="flaky") if e.kind == "instance_gave_up")
    assert worker in event.message and "exited with status 2" in event.message
    assert "worker: cannot reach the queue" in (event.data or {}).get("log", [])
    # scale brings a fresh worker back (the stored count still says 1)
    await hub.config.scale("flaky", {"worker": 1})
