"""The last route table on disk, so a restarted proxy serves before the hub answers."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from bindrop.client.proxywire import RouteTable, parse_table, render_table
from bindrop.errors import InvalidInput

log = logging.getLogger(__name__)


def save_table(path: Path, table: RouteTable) -> None:
    """Write ``table`` atomically (a reader sees the old file or the new, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(render_table(table)))
    os.replace(tmp, path)


def load_table(path: Path) -> RouteTable | None:
    """The saved table, or None when there is none or it cannot be read (logged)."""
    try:
        return parse_table(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, InvalidInput) as exc:
        log.warning("ignoring the route snapshot %s: %s", path, exc)
        return None
