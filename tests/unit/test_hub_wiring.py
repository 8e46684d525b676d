"""The hub's parts get what they need, never the ``Hub``: no module of bindrop/hub/ imports
``bindrop.hub.hub`` but the ones that build or serve a hub, and its modules form no import
cycle. Every import statement counts, including those under ``TYPE_CHECKING`` and inside
functions."""

from __future__ import annotations

import ast
from pathlib import Path

import bindrop

HUB_DIR = Path(bindrop.__file__).parent / "hub"
#: The one module of bindrop/hub/ that holds a whole hub: the hub itself.
HOLD_THE_HUB = {"bindrop.hub.hub"}


def imports_of(path: Path) -> set[str]:
    """Modules of bindrop.hub that ``path`` imports (``from bindrop.hub.x import y`` counts
    as ``bindrop.hub.x``, ``from bindrop.hub import x`` as ``bindrop.hub.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "bindrop.hub":
                found.update(f"bindrop.hub.{a.name}" for a in node.names)
            elif node.module.startswith("bindrop.hub."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("bindrop.hub."))
    return found


def hub_graph() -> dict[str, set[str]]:
    modules = {f"bindrop.hub.{p.stem}": p for p in HUB_DIR.glob("*.py") if p.stem != "__init__"}
    return {name: imports_of(path) & set(modules) - {name} for name, path in modules.items()}


def test_no_part_of_the_hub_imports_the_hub() -> None:
    graph = hub_graph()
    holders = sorted(m for m, deps in graph.items() if "bindrop.hub.hub" in deps)
    assert set(holders) <= HOLD_THE_HUB, holders


def test_the_hubs_modules_import_each_other_without_a_cycle() -> None:
    graph = hub_graph()
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            cycle = " -> ".join((*path[path.index(module):], module))
            raise AssertionError(f"import cycle: {cycle}")
        if module in done:
            return
        for dep in sorted(graph[module]):
            visit(dep, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())
