"""System apps belong to the server they run on (#16): an import keeps this server's own
dashboard and drops the bundle's; the source's install options travel in the manifest."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

from bindrop.moving.export import export_bundle
from bindrop.moving.importer import import_bundle
from bindrop.moving.install_options import (
    InstallOptions,
    build_install_options,
    carry_install_options,
    differing,
    parse_install_options,
)
from bindrop.settings import Settings
from bindrop.store import AppConfig, BlobStore, Store

from .test_moving_bundle import RecordingHub, fresh_server, make_server

HUB_UNIT = """[Service]
ExecStart=/opt/bindrop/bin/python -m bindrop hub
Environment=PYTHONUNBUFFERED=1
Environment=BINDROP_API_PORT=7300
Environment=BINDROP_CONTROL_HOST=bindrop.example.com
"""


def add_dashboard(settings: Settings, launcher: bytes, host: str) -> str:
    path = settings.root / "launcher"
    path.write_bytes(launcher)
    blob = BlobStore.open(settings).put_file(path, max_size=1 << 16)
    with Store.open(settings) as store:
        store.create_app(AppConfig(name="bindrop-dashboard", hosts=(host,), system=True,
                                   health_path="/healthz"))
        store.add_release("bindrop-dashboard", blob.sha256, blob.size, "binary", [], "system")
        store.update_app("bindrop-dashboard", current_release=1)
        store.set_env("bindrop-dashboard", {"FROM": host})
    return blob.sha256


def test_an_import_keeps_this_servers_own_dashboard_and_drops_the_bundles(
    tmp_path: Path,
) -> None:
    source = make_server(tmp_path / "old")
    old_sha = add_dashboard(source, b"#!/bin/sh\nexec /old/python -m bindrop\n", "dash.old")
    target = fresh_server(tmp_path / "new")
    new_sha = add_dashboard(target, b"#!/bin/sh\nexec /new/python -m bindrop\n", "dash.new")
    out = io.BytesIO()
    export_bundle(source, out)
    result = import_bundle(target, io.BytesIO(out.getvalue()), RecordingHub(), replace=True)
    assert result.system_apps.dropped == ("bindrop-dashboard",)
    assert result.system_apps.kept == ("bindrop-dashboard",)
    assert "bindrop-dashboard" not in result.started
    with Store.open(target) as store:
        dash = store.get_app("bindrop-dashboard")
        assert dash.system and dash.hosts == ("dash.new",) and dash.current_release == 1
        assert [r.sha256 for r in store.list_releases("bindrop-dashboard")] == [new_sha]
        assert [a.name for a in store.list_apps()] == ["blog", "shop"]
    assert old_sha != new_sha
    conn = sqlite3.connect(target.db_path)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


def test_an_import_onto_a_server_without_a_dashboard_leaves_it_without_one(
    tmp_path: Path,
) -> None:
    source = make_server(tmp_path / "old")
    add_dashboard(source, b"#!/bin/sh\nexec /old/python -m bindrop\n", "dash.old")
    target = fresh_server(tmp_path / "new")
    out = io.BytesIO()
    export_bundle(source, out)
    result = import_bundle(target, io.BytesIO(out.getvalue()), RecordingHub())
    assert result.system_apps.dropped == ("bindrop-dashboard",) and result.system_apps.kept == ()
    with Store.open(target) as store:
        assert [a.name for a in store.list_apps(include_system=True)] == ["blog", "shop"]


def test_install_options_are_read_from_the_installed_units() -> None:
    options = build_install_options(
        {"bindrop.service": HUB_UNIT, "bindrop-proxy.socket": "[Socket]\nListenStream=8080\n",
         "bindrop-backup.timer": "[Timer]\nOnCalendar=*-*-* 03:00\n"}, ["dash.example.com"])
    assert options == InstallOptions(http_port=8080, https_port=None, api_port=7300,
                                     control_host="bindrop.example.com",
                                     dashboard_host="dash.example.com",
                                     backup_schedule="*-*-* 03:00")
    assert options.install_args() == [
        "--http-port", "8080", "--https-port", "off", "--api-port", "7300",
        "--control-host", "bindrop.example.com", "--dashboard-host", "dash.example.com",
        "--backup-schedule", "*-*-* 03:00"]
    assert parse_install_options(options.to_dict()) == options
    assert build_install_options({}, []) is None
    other = InstallOptions(80, 443, 7300, "bindrop.example.com", None, "daily")
    assert differing(options, other) == ["http_port", "https_port", "dashboard_host",
                                         "backup_schedule"]


def test_the_manifest_carries_the_sources_install_options_and_the_import_says_what_differs(
    tmp_path: Path,
) -> None:
    source = make_server(tmp_path / "old")
    source.unit_dir.mkdir(parents=True)
    (source.unit_dir / "bindrop.service").write_text(HUB_UNIT)
    (source.unit_dir / "bindrop-proxy.socket").write_text("[Socket]\nListenStream=8080\n")
    out = io.BytesIO()
    manifest = export_bundle(source, out)
    assert manifest.install is not None and manifest.install["http_port"] == 8080
    target = fresh_server(tmp_path / "new")
    target.unit_dir.mkdir(parents=True)
    (target.unit_dir / "bindrop.service").write_text(HUB_UNIT)
    (target.unit_dir / "bindrop-proxy.socket").write_text("[Socket]\nListenStream=80\n")
    report = carry_install_options(target, manifest.install, apply=False)
    assert report["differing"] == ["http_port"] and report["applied"] is False
    assert "--http-port 8080" in report["command"]
    bare = carry_install_options(fresh_server(tmp_path / "bare"), manifest.install)
    assert bare["applied"] is False and "not installed" in bare["reason"]
