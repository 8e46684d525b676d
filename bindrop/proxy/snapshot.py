"""The last route table and TLS state on disk, so a restarted proxy serves before the hub
answers: the routes, and HTTPS (its redirects and HSTS) wherever the hub last said so."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path

from bindrop.client.proxywire import (
    RouteTable,
    TlsState,
    parse_table,
    parse_tls,
    render_table,
    render_tls,
)
from bindrop.errors import InvalidInput

log = logging.getLogger(__name__)


def _write(path: Path, data: object) -> None:
    """Write ``data`` as JSON atomically (a reader sees the old file or the new, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def save_table(path: Path, table: RouteTable) -> None:
    """Write ``table`` atomically."""
    _write(path, render_table(table))


def load_table(path: Path) -> RouteTable | None:
    """The saved table, or None when there is none or it cannot be read (logged)."""
    try:
        return parse_table(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, InvalidInput) as exc:
        log.warning("ignoring the route snapshot %s: %s", path, exc)
        return None


def tls_snapshot_path(routes: Path) -> Path:
    """Where the TLS state is kept: beside the route snapshot ``routes``
    (``proxy-routes.json`` -> ``proxy-routes.tls.json``)."""
    return routes.with_name(f"{routes.stem}.tls{routes.suffix}")


def save_tls(path: Path, state: TlsState) -> None:
    """Write ``state`` atomically, without its ACME challenges: those answer an order the
    hub runs now, and it sends them again when it is back."""
    _write(path, render_tls(replace(state, challenges={})))


def load_tls(path: Path) -> TlsState | None:
    """The saved TLS state, or None when there is none or it cannot be read (logged)."""
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("type") != "tls":
            raise InvalidInput("not a tls message")
        return parse_tls(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, InvalidInput) as exc:
        log.warning("ignoring the TLS snapshot %s: %s", path, exc)
        return None
