"""An app's scheduled job runs on its timer, never twice at once, and comes back after the
timer is gone (as after a reboot)."""

from __future__ import annotations

from itertools import pairwise

import pytest

from bindrop.api import ApiServer
from bindrop.hub.commands import Deploy
from bindrop.hub.hub import Hub
from bindrop.machine import Machine
from bindrop.settings import Settings

from .carekit import WRITER, apps_data, bindrop, care_env, deploy_writer, ok_json, wait_for

pytestmark = pytest.mark.integration

TIMER = "bindrop-cron-jobs.slow.timer"
SERVICE = "bindrop-cron-jobs.slow.service"


def runs(log: str) -> list[tuple[float, float]]:
    """(start, end) of each finished run in the job's log."""
    starts, ends = [], []
    for line in log.splitlines():
        word, _, at = line.partition(" ")
        (starts if word == "start" else ends).append(float(at))
    return list(zip(starts, ends, strict=False))


async def test_a_cron_job_runs_on_its_timer_and_never_overlaps(
    machine: Machine, settings: Settings, hub: Hub, api: ApiServer
) -> None:
    env = care_env(machine, settings, api)
    await deploy_writer(hub, "jobs", "serve", "--until", "2")
    bad = await bindrop(env, "cron", "add", "jobs", "whenever", "--", "job", "1")
    assert bad.exit_code == 1 and "calendar spec" in bad.output
    # Due every 2 s, each run takes 3 s: systemd skips what falls due during a run.
    added = ok_json(await bindrop(env, "cron", "add", "jobs", "*:*:0/2", "--name", "slow",
                                  "--json", "--", "job", "3"))
    assert added["args"] == ["job", "3"]
    assert [j["name"] for j in ok_json(await bindrop(env, "cron", "list", "jobs", "--json"))
            ] == ["slow"]
    log = apps_data(machine) / "jobs" / "cron.log"
    await wait_for(lambda: log.exists() and len(runs(log.read_text())) >= 2, timeout=30)
    finished = runs(log.read_text())
    for (_, end), (next_start, _) in pairwise(finished):
        assert next_start >= end, finished
    unit = machine.exec("systemctl", "show", SERVICE, "-p", "User", "-p", "Type").stdout
    assert "User=bindrop-jobs" in unit and "Type=oneshot" in unit

    # The timer vanishes (a reboot drops transient units): the hub's reconcile recreates it.
    machine.exec("systemctl", "stop", TIMER, SERVICE)
    machine.exec("systemctl", "reset-failed", SERVICE, check=False)
    await wait_for(lambda: not machine.exec(
        "systemctl", "list-units", "--all", "--plain", "--no-legend", TIMER, SERVICE
    ).stdout.strip())
    assert await hub.cron.reconcile() == ["jobs.slow"]
    assert "active" in machine.exec("systemctl", "is-active", TIMER, check=False).stdout

    ok_json(await bindrop(env, "cron", "rm", "jobs", "slow", "--json"))
    assert ok_json(await bindrop(env, "cron", "list", "jobs", "--json")) == []
    await wait_for(lambda: not machine.exec(
        "systemctl", "list-units", "--all", "--plain", "--no-legend",
        "bindrop-cron-*").stdout.strip())


async def test_jobs_follow_deploys_and_go_with_their_app(
    machine: Machine, settings: Settings, hub: Hub, api: ApiServer
) -> None:
    env = care_env(machine, settings, api)
    await deploy_writer(hub, "moving", "serve", "--until", "2")
    ok_json(await bindrop(env, "cron", "add", "moving", "daily", "--json", "--", "job", "0"))
    service = "bindrop-cron-moving.job1.service"

    def environment() -> str:
        return machine.exec("systemctl", "show", service, "-p", "Environment",
                            check=False).stdout

    assert "BINDROP_RELEASE=1 " in environment() + " "
    blob = hub.blobs.put_file(WRITER, max_size=1 << 20)
    release = hub.store.add_release("moving", blob.sha256, blob.size, "binary",
                                    ["serve", "--until", "2"], "tests")
    await hub.call("moving", Deploy(release.number))
    await wait_for(lambda: "BINDROP_RELEASE=2 " in environment() + " ", timeout=20)

    ok_json(await bindrop(env, "destroy", "moving", "--yes", "--json"))
    await wait_for(lambda: not machine.exec(
        "systemctl", "list-units", "--all", "--plain", "--no-legend",
        "bindrop-cron-moving*").stdout.strip(), timeout=20)

