"""Traffic through the proxy to two apps, counted: what /v1/apps/{app}/metrics and /metrics
say against what the test sent (counts exactly), with the hub, API and proxy as in
production (the proxy routes on the hub's control socket)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from bindrop.api import ApiServer, serve_api
from bindrop.api.proxylink import add_proxy_routes
from bindrop.cli.main import cli
from bindrop.client.client import Client, RemoteError
from bindrop.hub.commands import Deploy
from bindrop.hub.hub import Hub
from bindrop.hub.logs import JournalReader
from bindrop.hub.proxylink import ProxyLink
from bindrop.hub.pubsub import PubSub
from bindrop.hub.state import StateStore
from bindrop.proxy.server import ProxyOptions, ProxyServer
from bindrop.settings import Settings
from bindrop.store import BlobStore, Store
from tests.proxy.kit import get, running_proxy

from .conftest import stop_all
from .hubkit import HANG, add_app

pytestmark = pytest.mark.integration


@dataclasses.dataclass
class Stack:
    hub: Hub
    api: ApiServer
    proxy: ProxyServer


@pytest.fixture
async def stack(settings: Settings, store: Store, blobs: BlobStore, journal: JournalReader,
                tmp_path: Path) -> AsyncIterator[Stack]:
    state, events = StateStore(), PubSub()
    link = ProxyLink(state, store, events)
    hub = Hub(settings, store, blobs, journal=journal, router=link, state=state,
              events=events)
    api_settings = dataclasses.replace(settings, api_port=0)
    await hub.start()
    try:
        async with serve_api(hub, api_settings, local_only=lambda app: add_proxy_routes(
                app, link, hub=hub)) as api:
            options = ProxyOptions(hub_socket=settings.control_socket,
                                   snapshot=tmp_path / "routes.json", proxy_id="metrics-proxy",
                                   first_table_wait=0.3, shutdown_timeout=5.0,
                                   activity_interval=0.2)
            async with running_proxy(options) as proxy:
                yield Stack(hub, api, proxy)
    finally:
        await stop_all(hub)
        link.close()
        await hub.close()


async def wait_until(check: Any, what: str) -> Any:
    """Poll ``check()`` (an async function) until it returns something true."""
    async with asyncio.timeout(HANG * 3):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.5)
    raise AssertionError(what)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


async def test_traffic_to_two_apps_is_counted_exactly_in_the_series_and_in_prometheus(
        stack: Stack, store: Store, blobs: BlobStore) -> None:
    for name in ("alpha", "beta"):
        add_app(store, blobs, name, "--label", name)
        await stack.hub.call(name, Deploy(1))
    port = stack.proxy.ports[0]
    plan = {"alpha": ["/"] * 10 + ["/status/500"] * 3 + ["/sleep/0.3"] * 2,
            "beta": ["/"] * 4 + ["/status/404"] * 2 + ["/sleep/1.2"]}
    sent_bytes = {"alpha": 0, "beta": 0}
    for app, paths in plan.items():
        answers = await asyncio.gather(*(get(port, f"{app}.test", p) for p in paths))
        assert sorted(s for s, _ in answers) == sorted(
            int(p[8:]) if p.startswith("/status/") else 200 for p in paths)
        sent_bytes[app] = sum(len(body) for _, body in answers)
    expected = {"alpha": {"2xx": 12, "5xx": 3}, "beta": {"2xx": 5, "4xx": 2}}

    async with Client(f"unix:{stack.api.socket_path}") as client:
        async def counted(app: str) -> Any:
            series = await client.metrics(app, since="15m")
            in_points = sum(p["requests"] for p in series["points"])
            return series if in_points == len(plan[app]) else None

        for app in plan:
            series = await wait_until(lambda app=app: counted(app),  # type: ignore[misc]
                                      f"{app}'s points never held every request")
            total = series["totals"]["releases"]["1"]
            assert total["requests"] == len(plan[app])
            assert total["classes"] == expected[app]
            assert total["gateway"] == {}
            assert total["bytes_out"] == sent_bytes[app]
            assert total["bytes_in"] == 0
            assert sum(total["latency"]) == len(plan[app])
            classes: dict[str, int] = {}
            for point in series["points"]:
                for name, n in point["classes"].items():
                    classes[name] = classes.get(name, 0) + n
            assert classes == expected[app]
            assert series["step"] == 10
            assert series["marks"] and series["marks"][-1]["kind"] == "deploy_succeeded"
        alpha = (await client.metrics("alpha", since="15m"))["totals"]["all"]
        # The slow answers took at least their sleep: above the 0.25 s bound.
        buckets = (await client.metrics("alpha"))["buckets"]
        assert sum(alpha["latency"][buckets.index(0.25) + 1:]) >= 2

        text = await client.prometheus()
    found = samples(text)
    for app, classes in expected.items():
        for code_class, n in classes.items():
            assert found[("bindrop_http_requests_total",
                          labels(app=app, release="1", code_class=code_class))] == n
        assert found[("bindrop_http_request_duration_seconds_count",
                      labels(app=app, release="1"))] == len(plan[app])
        assert found[("bindrop_http_request_duration_seconds_bucket",
                      labels(app=app, release="1", le="+Inf"))] == len(plan[app])
        assert found[("bindrop_http_response_body_bytes_total",
                      labels(app=app, release="1"))] == sent_bytes[app]
        assert found[("bindrop_http_gateway_errors_total",
                      labels(app=app, release="1", code="502"))] == 0
    assert found[("bindrop_http_requests_total",
                  labels(app="alpha", release="1", code_class="5xx"))] == 3
    # beta's slow answer (1.2 s) is above the 1 s bound; at most 6 answers are within it.
    assert found[("bindrop_http_request_duration_seconds_bucket",
                  labels(app="beta", release="1", le="1.0"))] <= 6
    assert found[("bindrop_http_request_duration_seconds_sum",
                  labels(app="beta", release="1"))] >= 1.2
    # The hub sampled the apps' units: memory is there once a step has passed.
    await wait_until(lambda: _has_memory(stack), "no memory figure was sampled")

    # The CLI shows the same: bindrop metrics --json and one frame of bindrop top.
    env = {"BINDROP_SERVER": f"unix:{stack.api.socket_path}"}
    runner = CliRunner()
    shown = await asyncio.to_thread(runner.invoke, cli, ["metrics", "beta", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["totals"]["all"]["classes"] == expected["beta"]
    frame = await asyncio.to_thread(runner.invoke, cli, ["top", "--once", "--since", "15m"],
                                    env=env)
    assert frame.exit_code == 0, frame.output
    rows = {line.split()[0]: line.split() for line in frame.stdout.splitlines()[3:]}
    assert set(rows) == {"alpha", "beta"}
    assert rows["alpha"][1] == "running" and rows["alpha"][3] == "3"
    overview = await asyncio.to_thread(runner.invoke, cli, ["top", "--json", "--since", "15m"],
                                       env=env)
    apps = {a["app"]: a for a in json.loads(overview.stdout)["apps"]}
    assert apps["beta"]["requests"] == 7 and apps["beta"]["errors"] == 0
    assert apps["alpha"]["errors"] == 3 and apps["alpha"]["error_rate"] == 3 / 15


async def _has_memory(stack: Stack) -> bool:
    async with Client(f"unix:{stack.api.socket_path}") as client:
        found = samples(await client.prometheus())
    return ("bindrop_app_memory_bytes", labels(app="alpha")) in found


async def test_metrics_need_a_token_over_tcp(stack: Stack) -> None:
    async with Client(f"http://127.0.0.1:{stack.api.tcp_port}") as client:
        with pytest.raises(RemoteError) as raised:
            await client.prometheus()
    assert raised.value.status == 401


async def test_a_span_of_too_many_points_is_refused(stack: Stack, store: Store,
                                                    blobs: BlobStore) -> None:
    add_app(store, blobs, "gamma")
    async with Client(f"unix:{stack.api.socket_path}") as client:
        with pytest.raises(RemoteError) as raised:
            await client.metrics("gamma", since="7d", step="1m")
        assert raised.value.status == 400
        week = await client.metrics("gamma", since="7d", step="1h")
    assert len(week["points"]) in (7 * 24, 7 * 24 + 1)  # since is rounded down to a step
    assert all(p["requests"] == 0 for p in week["points"])


async def test_a_restart_systemd_made_after_a_crash_is_marked_on_the_graphs(
        stack: Stack, store: Store, blobs: BlobStore) -> None:
    add_app(store, blobs, "crashy", "--crash-after", "3")
    await stack.hub.call("crashy", Deploy(1))
    async with Client(f"unix:{stack.api.socket_path}") as client:
        async def marked() -> Any:
            marks = (await client.metrics("crashy", since="15m"))["marks"]
            return [m for m in marks if m["kind"] == "crash_restarted"]

        crashes = await wait_until(marked, "no crash was marked")
    assert "systemd restarted crashy" in crashes[0]["message"]
