"""The README's layout table says what the layering test enforces: one row per folder of
bindrop/, and its "may import" cell is that folder's rule."""

from __future__ import annotations

import re

import pytest

from tests.unit.test_layering import BINDROP_DIR, RULES, Rule

README = BINDROP_DIR.parent / "README.md"
ROW = re.compile(r"^\| `bindrop/(?P<folder>[a-z_]+)/` \|(?P<job>[^|]*)\|(?P<imports>[^|]*)\|$")


def layout_rows(text: str) -> dict[str, str]:
    """``folder -> may-import cell`` of the table under ``## Layout``."""
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return {m["folder"]: m["imports"].strip() for line in section.splitlines()
            if (m := ROW.match(line))}


def stated(cell: str) -> set[str] | None:
    """The bindrop parts a cell names (None for "anything")."""
    return None if cell == "anything" else set(re.findall(r"`([a-z_.]+)`", cell))


def allowed(rule: Rule) -> set[str] | None:
    return None if rule.bindrop is None else set(rule.bindrop) - {rule.folder}


@pytest.mark.parametrize("rule", RULES, ids=[r.folder for r in RULES])
def test_the_readme_states_each_folders_rule(rule: Rule) -> None:
    rows = layout_rows(README.read_text())
    assert rule.folder in rows, f"no row for bindrop/{rule.folder}/ in the README's layout"
    assert stated(rows[rule.folder]) == allowed(rule)


def test_every_python_folder_has_a_rule_and_a_row() -> None:
    folders = {p.parent.name for p in BINDROP_DIR.glob("*/__init__.py")}
    assert folders == {r.folder for r in RULES}
    rows = layout_rows(README.read_text())
    assert folders <= set(rows)


def test_a_row_that_says_more_than_the_rule_is_caught() -> None:
    text = ("intro\n## Layout\n\n| folder | job | may import |\n|---|---|---|\n"
            "| `bindrop/cli/` | the command | `client`, `store` |\n\n## Next\n")
    rule = next(r for r in RULES if r.folder == "cli")
    assert stated(layout_rows(text)["cli"]) != allowed(rule)
