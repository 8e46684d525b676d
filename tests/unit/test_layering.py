"""Imports point one way: each folder of bindrop/ imports only what design.md allows.

The rules are data: a new folder is one more ``Rule`` line. A rule for a folder that does not
exist yet passes. Every import statement counts, including those under ``TYPE_CHECKING`` and
inside functions.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import bindrop

BINDROP_DIR = Path(bindrop.__file__).parent

# Standard-library modules that do IO or concurrency: not for pure code.
IO_MODULES = (
    "asyncio",
    "socket",
    "ssl",
    "selectors",
    "subprocess",
    "multiprocessing",
    "threading",
    "sqlite3",
    "shutil",
    "tempfile",
    "http",
    "urllib.request",
)
DB = ("sqlite3", "sqlite_utils")
NO_IO = (*IO_MODULES, "dbus_fast", "sqlite_utils", "aiohttp")


@dataclass(frozen=True)
class Rule:
    """What the modules of ``bindrop/<folder>/`` may import.

    ``bindrop``: the bindrop packages/modules it may import (``errors`` for ``bindrop.errors``,
    ``client.proxywire`` for that one module of a package), or None for any.
    ``stdlib_only``: no third-party package at all. ``forbidden``: modules never imported
    (a name covers its submodules). ``exempt``: files, relative to bindrop/, that the rule
    skips.
    """

    folder: str
    bindrop: tuple[str, ...] | None
    forbidden: tuple[str, ...] = ()
    stdlib_only: bool = False
    exempt: tuple[str, ...] = ()


# domain/ is the pure core (names, limits, sizes, time spans, hosts, processes, releases):
# every layer may use it.
BASE = ("errors", "settings", "domain")
# units/ is pure (unit building): the server-side layers may share it.
PURE = (*BASE, "units")
# The hub <-> proxy wire: the proxy reads it from the client package; the hub and the API
# that serve it import that one module of the client package, nothing else of it.
WIRE = "client.proxywire"

# One line per folder; "may import" as in design.md's code layout.
RULES = (
    Rule("domain", ("errors", "domain"), forbidden=NO_IO, stdlib_only=True),
    Rule("units", PURE, forbidden=NO_IO, stdlib_only=True),
    # systemd/ knows systemd, not apps: it takes units' properties duck-typed.
    Rule("systemd", (*BASE, "systemd"), forbidden=(*DB, "aiohttp", "click")),
    Rule("hub", (*PURE, "hub", "systemd", "store", WIRE),
         forbidden=(*DB, "dbus_fast", "click")),
    Rule("store", (*PURE, "store"), forbidden=("dbus_fast", "aiohttp", "click")),
    # api reads backup listings and manifests through care/ (the work itself runs in units).
    Rule("api", (*PURE, "api", "hub", "store", "care", "version", WIRE),
         forbidden=(*DB, "dbus_fast", "click")),
    # client: where the readers of the API's stream protocol find it.
    Rule("proxy", (*BASE, "proxy", "client"), forbidden=(*DB, "dbus_fast", "click")),
    # client/ and the dashboard know the API, not the server's settings.
    Rule("client", ("errors", "domain", "client"),
         forbidden=(*DB, "dbus_fast", "click", "aiohttp.web")),
    # The CLI is a client: the server's own entry points are in serve/, which it only names.
    Rule("cli", ("cli", "client", "errors", "version", "domain"),
         forbidden=(*DB, "dbus_fast", "aiohttp")),
    # serve/ is the composition root (hub, proxy, install, care runs…): it may import anything,
    # and nothing imports it (test_nothing_imports_the_composition_root).
    Rule("serve", None),
    Rule("dashboard", ("errors", "domain", "dashboard", "client"), forbidden=(*DB, "dbus_fast")),
    # machine/ boots a private systemd with subprocesses; it knows nothing of apps.
    Rule("machine", (*BASE, "machine"), forbidden=(*DB, "dbus_fast", "aiohttp")),
    # moving/: export/import run on the server (SQLite, files); migrate drives two servers
    # through the client and ssh. Never the hub's insides or systemd directly.
    Rule("moving", (*PURE, "moving", "store", "care", "client", "version"),
         forbidden=("dbus_fast", "click")),
    # care/ runs on the server (backups, disk, gc): it reads files and SQLite copies directly,
    # reads bindrop's store, and reaches the hub only through the client.
    Rule("care", (*PURE, "care", "client", "store"), forbidden=("dbus_fast", "click")),
)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line, module)`` for every import in ``path``, relative imports resolved."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield node.lineno, base
            # "from bindrop import units" imports bindrop.units
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _covers(names: tuple[str, ...], module: str) -> bool:
    return any(module == n or module.startswith(n + ".") for n in names)


def _is_package_part(module: str, root: Path) -> bool:
    rel = Path(*module.split(".")[1:])
    return (root / rel).with_suffix(".py").exists() or (root / rel / "__init__.py").exists()


def violations(rule: Rule, root: Path = BINDROP_DIR) -> list[str]:
    """Every forbidden import in ``root/<rule.folder>/``, as ``file:line: module (why)``."""
    folder = root / rule.folder
    found = []
    for path in sorted(folder.rglob("*.py")) if folder.is_dir() else []:
        rel = path.relative_to(root).as_posix()
        if rel in rule.exempt:
            continue
        for line, module in imported_modules(path, root):
            top = module.split(".")[0]
            why = ""
            if top == "bindrop":
                parts = module.split(".")
                # "from bindrop.x import name" also yields bindrop.x.name: judge real modules only
                if (
                    len(parts) > 1
                    and _is_package_part(module, root)
                    and rule.bindrop is not None
                    and not _covers(rule.bindrop, ".".join(parts[1:]))
                ):
                    why = f"{rule.folder}/ may import only bindrop.{{{','.join(rule.bindrop)}}}"
            elif _covers(rule.forbidden, module):
                why = f"{rule.folder}/ may not import it"
            elif rule.stdlib_only and top not in sys.stdlib_module_names:
                why = f"{rule.folder}/ may import only the standard library"
            if why:
                found.append(f"{rel}:{line}: {module} ({why})")
    return sorted(set(found))


@pytest.mark.parametrize("rule", RULES, ids=[r.folder for r in RULES])
def test_folder_imports_only_what_it_may(rule: Rule) -> None:
    assert violations(rule) == []


def test_the_scan_reads_the_real_units_package() -> None:
    # Guards against the rules passing because they look at an empty or wrong folder.
    modules = {m for _, m in imported_modules(BINDROP_DIR / "units" / "app.py", BINDROP_DIR)}
    assert "bindrop.units.names" in modules
    assert "bindrop.errors" in modules


def test_every_rule_names_a_distinct_folder() -> None:
    folders = [r.folder for r in RULES]
    assert len(folders) == len(set(folders))


@pytest.mark.parametrize(
    ("file", "source", "reported"),
    [
        ("units/bad.py", "import dbus_fast\n", "dbus_fast"),
        ("units/bad.py", "from dbus_fast.aio import MessageBus\n", "dbus_fast.aio"),
        ("units/bad.py", "import asyncio\n", "asyncio"),
        ("units/bad.py", "import click\n", "only the standard library"),
        ("units/bad.py", "from bindrop.store import db\n", "bindrop.store"),
        ("units/bad.py", "from bindrop import store\n", "bindrop.store"),
        ("units/bad.py", "from ..store import db\n", "bindrop.store"),
        ("units/bad.py", "if TYPE_CHECKING:\n    import sqlite3\n", "sqlite3"),
        ("units/bad.py", "def f():\n    import subprocess\n", "subprocess"),
        ("domain/bad.py", "from bindrop.settings import Settings\n", "bindrop.settings"),
        ("domain/bad.py", "from bindrop.units.names import SLICE\n", "bindrop.units.names"),
        ("domain/bad.py", "import sqlite3\n", "sqlite3"),
        ("systemd/bad.py", "from bindrop.units import prop\n", "bindrop.units"),
        ("systemd/bad.py", "from ..units.names import SLICE\n", "bindrop.units.names"),
        ("cli/bad.py", "import sqlite_utils\n", "sqlite_utils"),
        ("cli/bad.py", "from dbus_fast import Variant\n", "dbus_fast"),
        ("cli/bad.py", "import aiohttp\n", "aiohttp"),
        ("cli/bad.py", "from bindrop.store import db\n", "bindrop.store"),
        ("cli/bad.py", "from bindrop import settings\n", "bindrop.settings"),
        ("cli/bad.py", "def f():\n    from bindrop.serve import names\n", "bindrop.serve"),
        ("cli/bad.py", "from bindrop.hub import names\n", "bindrop.hub"),
        ("dashboard/bad.py", "from bindrop.store import db\n", "bindrop.store"),
        ("hub/bad.py", "from bindrop.client.names import Client\n", "bindrop.client.names"),
        ("hub/bad.py", "from bindrop import client\n", "bindrop.client"),
        ("api/bad.py", "from bindrop.client.names import Client\n", "bindrop.client.names"),
        ("client/bad.py", "from aiohttp import web\n", "aiohttp.web"),
    ],
)
def test_a_forbidden_edge_is_reported(
    tmp_path: Path, file: str, source: str, reported: str
) -> None:
    root = fake_tree(tmp_path, {file: source})
    rule = next(r for r in RULES if r.folder == file.split("/")[0])
    assert any(reported in v for v in violations(rule, root)), violations(rule, root)


@pytest.mark.parametrize(
    ("file", "source"),
    [
        ("units/ok.py", "from __future__ import annotations\nimport re, hashlib\n"),
        ("units/ok.py", "from bindrop.domain.names import validate_app_name\n"),
        ("domain/ok.py", "from bindrop.errors import InvalidInput\nfrom . import names\n"),
        ("dashboard/ok.py", "from bindrop.domain.names import validate_app_name\n"),
        ("units/ok.py", "from . import names\nfrom .names import SLICE\n"),
        ("units/ok.py", "from bindrop.errors import InvalidInput\nfrom bindrop import units\n"),
        ("units/ok.py", "from bindrop.settings import Settings\nimport bindrop\n"),
        ("systemd/ok.py", "import dbus_fast\nfrom bindrop.errors import SystemdError\n"),
        ("cli/ok.py", "import click\nfrom bindrop.client import Client\n"),
        ("hub/ok.py", "from bindrop.client.proxywire import RouteTable\n"),
        ("api/ok.py", "from bindrop.client.proxywire import PATHS\n"),
        ("cli/ok.py", "from bindrop.errors import BindropError\nfrom bindrop import cli\n"),
        ("serve/ok.py", "import dbus_fast\nimport sqlite_utils\nfrom bindrop.store import db\n"),
        ("serve/ok.py", "from bindrop.hub import names\nfrom bindrop.cli import names\n"),
    ],
)
def test_an_allowed_edge_is_not_reported(tmp_path: Path, file: str, source: str) -> None:
    root = fake_tree(tmp_path, {file: source})
    rule = next(r for r in RULES if r.folder == file.split("/")[0])
    assert violations(rule, root) == []


def test_nothing_imports_the_composition_root() -> None:
    # The CLI names serve's commands in its lazy tables (strings, checked in
    # test_cli_is_a_client.py); no module outside serve/ imports it.
    found = [
        f"{path.relative_to(BINDROP_DIR).as_posix()}:{line}: {module}"
        for path in sorted(BINDROP_DIR.rglob("*.py"))
        if path.relative_to(BINDROP_DIR).parts[0] != "serve"
        for line, module in imported_modules(path, BINDROP_DIR)
        if _covers(("bindrop.serve",), module)
    ]
    assert found == []


def fake_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    """A bindrop/ package in ``tmp_path`` with every folder of RULES plus ``files``."""
    root = tmp_path / "bindrop"
    root.mkdir()
    (root / "__init__.py").write_text("")
    for name in ("errors.py", "settings.py"):
        (root / name).write_text("")
    for rule in RULES:
        (root / rule.folder).mkdir()
        (root / rule.folder / "__init__.py").write_text("")
        (root / rule.folder / "names.py").write_text("")
    (root / "store" / "db.py").write_text("")
    (root / "client" / "proxywire.py").write_text("")
    for rel, source in files.items():
        (root / rel).write_text(source)
    return root
