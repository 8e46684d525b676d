"""``bindrop migrate``: move every app to another server, and later retire the old one.

Runs wherever the CLI runs (a laptop, or either server): the export streams from the source
(``ssh SOURCE bindrop server export -``, or this process for a local source) straight into
``ssh TARGET bindrop server import -``; nothing is kept in between. The source keeps serving:
DNS still points at it until the user changes the records printed at the end. ``finish``
stops the migrated apps on the source.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bindrop.client.servers import config_path
from bindrop.errors import BindropError, NotFound
from bindrop.moving.readiness import plan_probes, wait_until_served
from bindrop.moving.remote import Remote

Log = Callable[[str], None]


@dataclass(frozen=True)
class MovedApp:
    name: str
    hosts: tuple[str, ...]
    release: int | None
    should_run: bool
    #: Answered through the new server's proxy on each of its hosts (None: not asked).
    served: bool | None


@dataclass(frozen=True)
class DnsRecord:
    name: str
    type: str
    value: str


@dataclass(frozen=True)
class MigrationReport:
    source: str
    target: str
    target_address: str
    set_up: bool
    bytes: int
    apps: tuple[MovedApp, ...]
    dns: tuple[DnsRecord, ...]
    #: The source's `bindrop install` options, and whether the target took them
    #: (``bindrop.moving.install_options.carry_install_options``).
    install: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(a.served is not False for a in self.apps)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "install": dict(self.install) if self.install else None,
                "ok": self.ok}


def stream_export_into_import(source: Remote, target: Remote, *, replace: bool = False,
                              blobs_in_bucket: bool = False) -> dict[str, Any]:
    """Pipe the source's export into the target's import; return the import's JSON report.
    ``BindropError`` with the import's reason when it refuses (the target is then as it was)."""
    flags = ["--blobs-in-bucket"] if blobs_in_bucket else []
    export = subprocess.Popen(source.bindrop_argv("server", "export", "-", *flags),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert export.stdout is not None
    extra = ["--replace"] if replace else []
    try:
        imported = subprocess.run(target.bindrop_argv("server", "import", "-", "--json", *extra),
                                  stdin=export.stdout, capture_output=True, check=False)
    finally:
        export.stdout.close()
        export_rc = export.wait()
    if imported.returncode != 0:
        reason = imported.stderr.decode(errors="replace").strip().removeprefix("error: ")
        raise BindropError(f"the import on {target.url} failed: {reason or 'no reason given'}")
    if export_rc != 0:
        raise BindropError(f"the export on {source.url} failed (exit {export_rc})")
    report: dict[str, Any] = json.loads(imported.stdout)
    return report


def dns_records(hosts: Sequence[str], address: str) -> list[DnsRecord]:
    """The records to point at ``address``: one per host name (path prefixes dropped). Pure."""
    kind = "AAAA" if ":" in address else "A"
    names = sorted({h.partition("/")[0] for h in hosts})
    return [DnsRecord(n, kind, address) for n in names]


def resolve(host: str) -> str:
    try:
        return str(socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0])
    except OSError:
        return host


def migrate(source: Remote, target: Remote, *, environ: Mapping[str, str],
            http_port: int = 80, timeout: float = 180.0, replace: bool = False,
            set_up: Callable[[], object] | None = None, blobs_in_bucket: bool = False,
            log: Log = lambda _m: None) -> MigrationReport:
    """Set the target up when needed (``set_up``), move everything, wait until each app
    that should run answers through the target's proxy, and record the migration for
    ``finish`` in the user's config (found through ``environ``)."""
    from bindrop.moving.setup import is_set_up

    did_setup = False
    if not is_set_up(target):
        if set_up is None:
            raise NotFound(f"{target.url} does not run bindrop; set it up with "
                           f"`bindrop server setup {target.url}`")
        log(f"setting up {target.url}")
        set_up()
        did_setup = True
    log(f"moving {source.url} -> {target.url}")
    imported = stream_export_into_import(source, target, replace=replace,
                                         blobs_in_bucket=blobs_in_bucket)
    address = resolve(target.host)
    install = imported.get("install") or {}
    if install.get("applied") and (install.get("source") or {}).get("http_port"):
        # The new server's proxy now listens where the old one did.
        http_port = int(install["source"]["http_port"])
    apps = imported.get("app_details", [])
    # System apps (the dashboard) are the new server's own business: not waited for, and
    # their *.localhost names need no DNS.
    probes = [p for a in apps if a["should_run"] and not a.get("system")
              for p in plan_probes(a["name"], a["hosts"], a.get("health_path"))]
    log(f"waiting for {len(probes)} hostnames to answer through {address}:{http_port}")
    served = wait_until_served(address, http_port, probes, timeout, progress=log)
    moved = tuple(MovedApp(a["name"], tuple(a["hosts"]), a["current_release"], a["should_run"],
                           served.get(a["name"]) if a["should_run"] else None)
                  for a in apps if not a.get("system"))
    report = MigrationReport(
        source=source.url, target=target.url, target_address=address, set_up=did_setup,
        bytes=int(imported.get("bytes", 0)), apps=moved,
        dns=tuple(dns_records([h for a in moved for h in a.hosts], address)),
        install=imported.get("install"),
    )
    save_record(environ, report)
    return report


# -- the record `finish` reads ---------------------------------------------------------------

def records_path(environ: Mapping[str, str]) -> Path:
    return config_path(environ).with_name("migrations.json")


def save_record(environ: Mapping[str, str], report: MigrationReport) -> None:
    path = records_path(environ)
    records = load_records(environ)
    records[report.source] = {
        "target": report.target,
        "apps": [a.name for a in report.apps if a.should_run],
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
    os.replace(temp, path)


def load_records(environ: Mapping[str, str]) -> dict[str, Any]:
    try:
        data = json.loads(records_path(environ).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recorded_apps(environ: Mapping[str, str], source_url: str) -> tuple[str, list[str]]:
    """The target and the apps of the last migration from ``source_url``; ``NotFound``."""
    record = load_records(environ).get(source_url)
    if not isinstance(record, dict):
        raise NotFound(f"no migration from {source_url} is recorded here: run "
                       f"`bindrop migrate --server {source_url} --to ssh://root@NEW` first")
    return str(record["target"]), [str(a) for a in record["apps"]]
