"""The options a server was installed with (``bindrop install``), carried by a move.

They live in the units ``bindrop install`` wrote (ports in the proxy's sockets, the API's
port and control host in bindrop.service, the backup schedule in its timer) and in the
database (the dashboard's host). An export reads them into its manifest; an import compares
them with its own server's and re-runs ``bindrop install`` with the source's when they differ.
"""

from __future__ import annotations

import re
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from bindrop.settings import Settings

HUB = "bindrop.service"
HTTP_SOCKET = "bindrop-proxy.socket"
HTTPS_SOCKET = "bindrop-proxy-https.socket"
BACKUP_TIMER = "bindrop-backup.timer"


@dataclass(frozen=True)
class InstallOptions:
    """``bindrop install``'s options; None where off (or not found)."""

    http_port: int | None
    https_port: int | None
    api_port: int | None
    control_host: str | None
    dashboard_host: str | None
    backup_schedule: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def install_args(self) -> list[str]:
        """The arguments of ``bindrop install`` that give these options. Pure."""
        args = []
        if self.http_port is not None:
            args += ["--http-port", str(self.http_port)]
        args += ["--https-port", str(self.https_port) if self.https_port else "off"]
        args += ["--api-port", str(self.api_port) if self.api_port else "off"]
        if self.control_host:
            args += ["--control-host", self.control_host]
        args += ["--dashboard-host", self.dashboard_host or "off"]
        if self.backup_schedule:
            args += ["--backup-schedule", self.backup_schedule]
        return args

    def command(self) -> str:
        return shlex.join(["bindrop", "install", *self.install_args()])


def parse_install_options(data: object) -> InstallOptions | None:
    """The options as a manifest holds them (``to_dict``); None when absent or malformed."""
    if not isinstance(data, Mapping):
        return None
    try:
        return InstallOptions(**{k: data.get(k) for k in InstallOptions.__dataclass_fields__})
    except TypeError:
        return None


def _setting(text: str, key: str) -> str | None:
    """The last value of ``key=`` in a unit file's text (``Environment=K=V`` as ``K``)."""
    found = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Environment="):
            line = line.removeprefix("Environment=")
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            found = value.strip()
    return found


def _port(text: str | None) -> int | None:
    if text is None:
        return None
    match = re.fullmatch(r"(?:.*:)?(\d{1,5})", text)
    return int(match.group(1)) if match and 0 < int(match.group(1)) <= 65535 else None


def build_install_options(units: Mapping[str, str],
                          dashboard_hosts: Iterable[str]) -> InstallOptions | None:
    """The options from the installed units' texts (by name) and the dashboard's hosts.
    None when bindrop was not installed with ``bindrop install`` (no bindrop.service). Pure."""
    hub = units.get(HUB)
    if hub is None:
        return None
    api = _setting(hub, "BINDROP_API_PORT")
    hosts = list(dashboard_hosts)
    return InstallOptions(
        http_port=_port(_setting(units.get(HTTP_SOCKET, ""), "ListenStream")),
        https_port=_port(_setting(units.get(HTTPS_SOCKET, ""), "ListenStream")),
        api_port=_port(api) if api and api != "off" else None,
        control_host=_setting(hub, "BINDROP_CONTROL_HOST"),
        dashboard_host=hosts[0] if hosts else None,
        backup_schedule=_setting(units.get(BACKUP_TIMER, ""), "OnCalendar"),
    )


def read_install_options(settings: Settings,
                         dashboard_hosts: Iterable[str]) -> InstallOptions | None:
    """This server's options, read from its installed units. Reads only."""
    units = {}
    for name in (HUB, HTTP_SOCKET, HTTPS_SOCKET, BACKUP_TIMER):
        path = settings.unit_dir / name
        if path.is_file():
            units[name] = path.read_text()
    return build_install_options(units, dashboard_hosts)


def differing(source: InstallOptions, here: InstallOptions) -> list[str]:
    """The names of the options that differ. Pure."""
    theirs, ours = source.to_dict(), here.to_dict()
    return [k for k in theirs if theirs[k] != ours[k]]


def system_app_hosts(settings: Settings) -> list[str]:
    """The hosts of this server's system apps (the dashboard's), from its database."""
    if not settings.db_path.is_file():
        return []
    conn = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute(
            "SELECT host FROM hosts JOIN apps ON apps.name = hosts.app "
            "WHERE apps.system = 1 ORDER BY hosts.app, hosts.position")]
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def carry_install_options(settings: Settings, source: Mapping[str, Any] | None, *,
                          apply: bool = True) -> dict[str, Any]:
    """Compare the source's options (a manifest's ``install``) with this server's and, when
    they differ and ``apply``, re-run ``bindrop install`` here with the source's. Returns
    what it found and did, for the import's report (``applied`` false with a reason when it
    did not)."""
    theirs = parse_install_options(source)
    if theirs is None:
        return {"source": None, "differing": [], "applied": False,
                "reason": "the bundle does not say how its server was installed"}
    ours = read_install_options(settings, system_app_hosts(settings))
    report: dict[str, Any] = {"source": theirs.to_dict(), "command": theirs.command()}
    if ours is None:
        return report | {"differing": [], "applied": False,
                         "reason": "bindrop was not installed here with `bindrop install`"}
    report["differing"] = differing(theirs, ours)
    if not report["differing"]:
        return report | {"applied": True, "reason": None}
    if not apply:
        return report | {"applied": False, "reason": "kept this server's (asked to)"}
    proc = subprocess.run([sys.executable, "-m", "bindrop", "install", *theirs.install_args()],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        reason = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        return report | {"applied": False,
                         "reason": reason[-1] if reason else f"exit {proc.returncode}"}
    return report | {"applied": True, "reason": None}


def describe_install(report: Mapping[str, Any]) -> str:
    """One line for people about ``carry_install_options``' report. Pure."""
    if report.get("source") is None or (report.get("reason") and not report.get("command")):
        return f"install options not carried: {report.get('reason')}"
    differ = ", ".join(str(d).replace("_", "-") for d in report.get("differing", []))
    if report.get("applied"):
        return (f"install options carried ({differ} changed: {report['command']})" if differ
                else "install options: the same as the source's")
    return (f"install options NOT carried ({differ} differ; {report.get('reason')}): run "
            f"{report['command']}")
