"""The differential rig: one recording upstream (a port per proxy), nginx (the reference)
and bindrop's proxy (in a thread, serving a route table from disk, no hub) in front of it.
Shared by the whole session: nginx starts once."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from bindrop.client.proxywire import AppRoute, RouteTable, Upstream
from bindrop.proxy.listen import bind_socket
from bindrop.proxy.server import ProxyOptions, ProxyServer
from bindrop.proxy.snapshot import save_table

from .harness import Case, Outcome, run_case
from .recorder import Background, Recorder, free_port
from .reference import NGINX, Nginx


@dataclass
class Rig:
    background: Background
    recorder: Recorder
    nginx: Nginx
    options: ProxyOptions
    proxy: ProxyServer | None = None

    @property
    def bindrop_port(self) -> int:
        assert self.proxy is not None
        return self.proxy.ports[0]

    def start_bindrop(self) -> None:
        proxy = ProxyServer(self.options, access_out=None)
        self.background.call(proxy.start([bind_socket("127.0.0.1", 0)]))
        self.proxy = proxy

    def stop_bindrop(self) -> None:
        proxy, self.proxy = self.proxy, None
        if proxy is not None:
            self.background.call(proxy.close())

    def restart_bindrop(self) -> None:
        """A fresh proxy after a failed case: what a failure left behind (a broken pooled
        upstream connection) must not fail the cases after it."""
        self.stop_bindrop()
        self.start_bindrop()

    def run(self, lane: str, case: Case, *, quiet: float = 0.15) -> Outcome:
        port = self.nginx.port if lane == "nginx" else self.bindrop_port
        return run_case(self.background, self.recorder, lane, port, case, quiet=quiet)

    def run_both(self, case: Case, *, quiet: float = 0.15, nginx_patience: float | None = None
                 ) -> tuple[Outcome, Outcome]:
        """(nginx's outcome, bindrop's), run side by side (each proxy has its own lane);
        ``nginx_patience``: a shorter wait for nginx where it is known to hang."""
        reference = case if nginx_patience is None else \
            dataclasses.replace(case, patience=nginx_patience)
        with ThreadPoolExecutor(2) as pool:
            nginx = pool.submit(self.run, "nginx", reference, quiet=quiet)
            bindrop = self.run("bindrop", case, quiet=quiet)
            return nginx.result(), bindrop


def route_table(port: int) -> RouteTable:
    return RouteTable(1, (AppRoute(
        app="app", hosts=("app.test",), status="running",
        upstream=Upstream("bindrop-app-app-1.service", "1", port)),))


@pytest.fixture(scope="session")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    if not NGINX.exists():
        pytest.skip("nginx is not installed (apt-get install nginx-light; scripts/setup.sh)")
    tmp = tmp_path_factory.mktemp("differential")
    background = Background()
    background.start()
    recorder = Recorder(("nginx", "bindrop"))
    rig: Rig | None = None
    nginx: Nginx | None = None
    try:
        background.call(recorder.start())
        save_table(tmp / "proxy-routes.json", route_table(recorder.lanes["bindrop"].port))
        options = dataclasses.replace(
            ProxyOptions(hub_socket=tmp / "no-hub.sock", snapshot=tmp / "proxy-routes.json"),
            first_table_wait=0.05, shutdown_timeout=1.0, proxy_id="differential")
        nginx = Nginx(Path(tmp) / "nginx", free_port(), recorder.lanes["nginx"].port)
        nginx.start()
        rig = Rig(background, recorder, nginx, options)
        rig.start_bindrop()
        yield rig
    finally:
        if nginx is not None:
            nginx.stop()
        if rig is not None:
            rig.stop_bindrop()
        background.call(recorder.stop())
        background.stop()
