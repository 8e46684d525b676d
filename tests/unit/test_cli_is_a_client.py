"""The CLI is a client (#19): the server's own entry points live in bindrop.serve, which the
CLI's lazy tables only name; a command a person runs against a server loads no part of it."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

import bindrop
from bindrop.cli.lazy import LazyGroup
from bindrop.cli.main import cli

BINDROP_DIR = Path(bindrop.__file__).parent
SERVE = "bindrop.serve."
# What a client command must never load: the server's parts, its settings and their IO
# libraries.
SERVER_PARTS = ("bindrop.serve", "bindrop.hub", "bindrop.api", "bindrop.store",
                "bindrop.settings", "bindrop.units",
                "bindrop.systemd", "bindrop.proxy", "bindrop.care", "bindrop.moving",
                "bindrop.machine", "bindrop.dashboard", "dbus_fast", "sqlite_utils")


def lazy_tables(group: click.Group = cli) -> Iterator[tuple[tuple[str, ...], str, str]]:
    """``(group path, name, "module:attribute")`` of every lazy command, nested groups too
    (only the CLI's own groups are walked: serve's are not loaded)."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        target = group.lazy.get(name) if isinstance(group, LazyGroup) else None
        if target is not None:
            yield (), name, target
            if target.startswith(SERVE):
                continue
        sub = group.get_command(ctx, name)
        if isinstance(sub, click.Group):
            yield from (((name, *path), n, t) for path, n, t in lazy_tables(sub))


TABLE = list(lazy_tables())
SERVED = [(path, name, target) for path, name, target in TABLE if target.startswith(SERVE)]


def _id(entry: tuple[tuple[str, ...], str, str]) -> str:
    return " ".join((*entry[0], entry[1]))


def test_the_tables_name_the_server_side_commands() -> None:
    named = {_id(e) for e in SERVED}
    assert {"hub", "proxy", "install", "machine", "care-run", "api-stdio", "migrate",
            "dashboard serve", "server export", "server import", "server restore",
            "server setup"} == named


@pytest.mark.parametrize("entry", TABLE, ids=[_id(e) for e in TABLE])
def test_every_lazy_target_imports_and_is_a_click_command(
    entry: tuple[tuple[str, ...], str, str],
) -> None:
    _path, name, target = entry
    module, _, attr = target.partition(":")
    assert module.startswith(("bindrop.cli.", SERVE)), target
    command = getattr(importlib.import_module(module), attr)
    assert isinstance(command, click.Command)
    # The name the table gives is the command's own (click would show the other in errors).
    assert command.name == name


def test_only_the_lazy_tables_name_bindrop_serve() -> None:
    """A "bindrop.serve." string outside serve/ is one of the tables' targets (the layering
    test checks that no module imports it)."""
    targets = {t for _, _, t in SERVED}
    named = {
        f"{path.relative_to(BINDROP_DIR).as_posix()}: {node.value}"
        for path in sorted(BINDROP_DIR.rglob("*.py"))
        if path.relative_to(BINDROP_DIR).parts[0] != "serve"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and SERVE in node.value and node.value not in targets
    }
    assert named == set()


def _loaded_by(code: str) -> list[str]:
    """The modules a fresh interpreter has loaded after ``code`` (other tests' imports do
    not count)."""
    out = subprocess.run([sys.executable, "-c", code + "\nimport json, sys\n"
                          "print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, timeout=120)
    loaded: list[str] = json.loads(out.stdout.splitlines()[-1])
    return loaded


def _of(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in names)]


def test_importing_the_cli_loads_neither_the_hub_nor_aiohttp_nor_dbus() -> None:
    loaded = _loaded_by("import bindrop.cli.main")
    assert "bindrop.cli.main" in loaded
    assert _of(loaded, (*SERVER_PARTS, "aiohttp")) == []


def test_the_commands_a_person_runs_against_a_server_load_no_part_of_the_server() -> None:
    # Every command and subcommand but serve's, loaded as `bindrop X --help` would.
    loaded = _loaded_by(
        "import click\n"
        "from bindrop.cli.lazy import LazyGroup\n"
        "from bindrop.cli.main import cli\n"
        "def walk(group):\n"
        "    ctx = click.Context(group)\n"
        "    for name in group.list_commands(ctx):\n"
        "        lazy = group.lazy if isinstance(group, LazyGroup) else {}\n"
        "        if lazy.get(name, '').startswith('bindrop.serve.'):\n"
        "            continue\n"
        "        sub = group.get_command(ctx, name)\n"
        "        if isinstance(sub, click.Group):\n"
        "            walk(sub)\n"
        "walk(cli)\n")
    assert "bindrop.cli.apps" in loaded and "bindrop.cli.servers" in loaded
    assert _of(loaded, SERVER_PARTS) == []
