"""`bindrop server export` / `import` on the server itself (BINDROP_ROOT moves it) (#9)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bindrop.cli.main import cli
from bindrop.settings import Settings
from bindrop.store import Store

from .test_moving_bundle import make_server

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="export and import run as root")


def run(*args: str, root: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env={"BINDROP_ROOT": str(root)})
    return result.exit_code, result.stdout, result.stderr


def test_export_to_a_file_and_import_it_on_a_fresh_root(tmp_path: Path) -> None:
    make_server(tmp_path / "old")
    bundle = tmp_path / "server.tar"
    code, out, err = run("server", "export", str(bundle), "--json", root=tmp_path / "old")
    assert code == 0, err
    assert json.loads(out)["apps"] == ["blog", "shop"]
    assert bundle.exists() and not (tmp_path / "server.tar.part").exists()
    code, out, err = run("server", "import", str(bundle), "--json", root=tmp_path / "new")
    assert code == 0, err
    assert json.loads(out)["started"] == ["blog"]
    with Store.open(Settings(root=tmp_path / "new")) as store:
        assert [a.name for a in store.list_apps()] == ["blog", "shop"]


def test_import_of_a_missing_file_says_so(tmp_path: Path) -> None:
    code, _out, err = run("server", "import", str(tmp_path / "nope.tar"), root=tmp_path)
    assert code == 1 and "cannot read" in err


def test_export_without_a_database_says_where_to_run_it(tmp_path: Path) -> None:
    code, _out, err = run("server", "export", str(tmp_path / "x.tar"), root=tmp_path)
    assert code == 1 and "no bindrop database" in err
    assert not list(tmp_path.glob("x.tar*"))


def test_migrate_needs_a_target_or_finish(tmp_path: Path) -> None:
    code, _out, err = run("migrate", root=tmp_path)
    assert code == 1 and "--to ssh://root@NEW" in err
