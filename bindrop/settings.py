"""One settings object for the whole of bindrop.

Every path is derived from one ``root`` so that tests and a private machine move everything
by changing one value. Built from an injected environment mapping, never read from
``os.environ`` behind the caller's back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# The host at which the proxy serves the dashboard (a system app; "off" for none): defined
# with the client, whose `dashboard setup` offers it too.
from bindrop.client.servers import DEFAULT_DASHBOARD_HOST as DEFAULT_DASHBOARD_HOST
from bindrop.domain.hosts import parse_host
from bindrop.domain.processes import DEFAULT_MAX_INSTANCES
from bindrop.domain.sizes import SIZE_FACTORS
from bindrop.errors import InvalidInput

SYSTEM_BUS_DEFAULT = "unix:path=/run/dbus/system_bus_socket"
#: The port ``bindrop install`` gives ``BINDROP_API_PORT`` on a server: the control API on
#: 127.0.0.1, where every request needs a token (the proxy exposes it at the control host).
#: Off when the variable is unset: private machines share the host's network, so each picks
#: a free port instead.
DEFAULT_API_PORT = 7300
#: The host at which the proxy exposes the TCP control API; no app may claim it.
DEFAULT_CONTROL_HOST = "bindrop.localhost"
DEFAULT_UPLOAD_LIMIT = 1024**3
#: How long a release command may run (Heroku's release phase: one hour too).
DEFAULT_RELEASE_TIMEOUT_S = 3600.0


def _default_machines_dir(environ: Mapping[str, str]) -> Path:
    home = Path(environ.get("HOME", "/root"))
    data_home = environ.get("XDG_DATA_HOME") or str(home / ".local/share")
    return Path(data_home) / "bindrop" / "machines"


@dataclass(frozen=True)
class Settings:
    """Where bindrop keeps things and how it reaches systemd.

    ``root`` is "/" on a server; every path below hangs off it.
    """

    root: Path = Path("/")
    bus_address: str = SYSTEM_BUS_DEFAULT
    machines_dir: Path = field(default_factory=lambda: _default_machines_dir({}))
    port_range: tuple[int, int] = (20000, 29999)
    drain_timeout: float = 30.0
    releases_kept: int = 5
    #: TCP port of the control API on 127.0.0.1 (tokens); None: the unix socket only;
    #: 0: any free port (tests).
    api_port: int | None = None
    #: Largest release upload accepted, in bytes.
    upload_limit: int = DEFAULT_UPLOAD_LIMIT
    #: Where the proxy routes to the TCP control API (when ``api_port`` is set).
    control_host: str = DEFAULT_CONTROL_HOST
    #: Where the proxy serves the dashboard; None: no dashboard.
    dashboard_host: str | None = DEFAULT_DASHBOARD_HOST
    #: Most instances a process type of an app may be scaled to (BINDROP_MAX_INSTANCES).
    max_instances: int = DEFAULT_MAX_INSTANCES
    #: Longest a release command may run before it is stopped and its deploy fails (a
    #: migration waiting on a lock forever would otherwise hold the app's every action;
    #: BINDROP_RELEASE_TIMEOUT).
    release_timeout_s: float = DEFAULT_RELEASE_TIMEOUT_S
    #: Networks of the load balancers / CDNs in front of the proxy (CIDR, as given), whose
    #: X-Forwarded-* headers the proxy keeps; none: the proxy is the edge.
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from ``BINDROP_*`` variables in ``environ``; reads nothing else."""
        root = Path(environ.get("BINDROP_ROOT", "/"))
        if not root.is_absolute():
            raise InvalidInput(f"BINDROP_ROOT must be an absolute path, not {root!s}")
        machines = environ.get("BINDROP_MACHINES_DIR")
        control = environ.get("BINDROP_CONTROL_HOST")
        dashboard = environ.get("BINDROP_DASHBOARD_HOST")
        return cls(
            dashboard_host=(parse_dashboard_host(dashboard) if dashboard is not None
                            else DEFAULT_DASHBOARD_HOST),
            api_port=parse_api_port(environ.get("BINDROP_API_PORT")),
            control_host=parse_control_host(control) if control else DEFAULT_CONTROL_HOST,
            upload_limit=_size("BINDROP_UPLOAD_LIMIT", environ.get("BINDROP_UPLOAD_LIMIT"),
                               DEFAULT_UPLOAD_LIMIT),
            root=root,
            bus_address=environ.get("BINDROP_BUS_ADDRESS")
            or environ.get("DBUS_SYSTEM_BUS_ADDRESS")
            or SYSTEM_BUS_DEFAULT,
            machines_dir=Path(machines) if machines else _default_machines_dir(environ),
            max_instances=_count("BINDROP_MAX_INSTANCES", environ.get("BINDROP_MAX_INSTANCES"),
                                 DEFAULT_MAX_INSTANCES),
            release_timeout_s=parse_span("BINDROP_RELEASE_TIMEOUT",
                                         environ.get("BINDROP_RELEASE_TIMEOUT"),
                                         DEFAULT_RELEASE_TIMEOUT_S),
            trusted_proxies=tuple(item.strip() for item in
                                  environ.get("BINDROP_TRUSTED_PROXIES", "").split(",")
                                  if item.strip()),
        )

    def _under(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    @property
    def etc_dir(self) -> Path:
        return self._under("/etc/bindrop")

    @property
    def state_dir(self) -> Path:
        return self._under("/var/lib/bindrop")

    @property
    def db_path(self) -> Path:
        return self.state_dir / "bindrop.db"

    @property
    def blobs_dir(self) -> Path:
        return self.state_dir / "blobs" / "sha256"

    @property
    def apps_dir(self) -> Path:
        return self.state_dir / "apps"

    @property
    def backups_dir(self) -> Path:
        return self._under("/var/backups/bindrop")

    @property
    def run_dir(self) -> Path:
        return self._under("/run/bindrop")

    @property
    def control_socket(self) -> Path:
        return self.run_dir / "control.sock"

    @property
    def unit_dir(self) -> Path:
        """Where installed (not transient) units are written."""
        return self._under("/etc/systemd/system")


def _count(name: str, text: str | None, default: int) -> int:
    if text is None or not text.strip():
        return default
    if not text.strip().isdigit() or not 1 <= int(text) <= 10_000:
        raise InvalidInput(f"{name} must be a whole number from 1 to 10000, not {text!r}")
    return int(text)


def parse_api_port(text: str | None) -> int | None:
    """``BINDROP_API_PORT``: a port number, or unset / "" / "off" for no TCP listener."""
    if text is None or text.strip().lower() in ("", "off", "none", "0"):
        return None
    if not text.strip().isdigit() or not 0 < int(text) <= 65535:
        raise InvalidInput(f"BINDROP_API_PORT must be a port number (1-65535) or 'off', "
                           f"not {text!r}")
    return int(text)


def parse_control_host(text: str) -> str:
    """``BINDROP_CONTROL_HOST``: a host name as an app's (canonical, lowercased), without a
    path prefix: the control API takes the whole host. ``InvalidInput`` otherwise."""
    try:
        host = parse_host(text)
    except InvalidInput as exc:
        raise InvalidInput(f"BINDROP_CONTROL_HOST: {exc.message}") from None
    if "/" in host:
        raise InvalidInput(f"BINDROP_CONTROL_HOST must be a host name without a path, such as "
                           f"bindrop.example.com, not {text!r}")
    return host


def parse_dashboard_host(text: str) -> str | None:
    """``BINDROP_DASHBOARD_HOST``: a host name without a path, or "off" / "" for no
    dashboard. ``InvalidInput`` otherwise."""
    if text.strip().lower() in ("", "off", "none"):
        return None
    try:
        host = parse_control_host(text)
    except InvalidInput as exc:
        raise InvalidInput(exc.message.replace("BINDROP_CONTROL_HOST",
                                               "BINDROP_DASHBOARD_HOST")) from None
    return host


_SPAN_UNITS = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
#: The longest span ``parse_span`` takes (a week: longer is a mistake, not a migration).
SPAN_MAX_S = 7 * 86400.0


def parse_span(name: str, text: str | None, default: float) -> float:
    """A span of time such as ``90``, ``90s``, ``30min`` or ``2h``, in seconds (unset or
    empty: ``default``). ``InvalidInput`` naming ``name`` for anything else, zero, or more
    than a week."""
    if text is None or not text.strip():
        return default
    value = text.strip().lower()
    number = value.rstrip("acehimns")
    unit = value[len(number):]
    try:
        seconds = float(number) * _SPAN_UNITS[unit] if number else 0.0
    except (KeyError, ValueError):
        seconds = 0.0
    if not 1 <= seconds <= SPAN_MAX_S:  # also false for nan
        raise InvalidInput(f"{name} must be a span such as 600, 90s, 30min or 2h (1 s to "
                           f"a week), not {text!r}")
    return seconds


def _size(name: str, text: str | None, default: int) -> int:
    """A size such as ``512M`` or ``2G`` (powers of 1024) or a number of bytes."""
    if text is None or not text.strip():
        return default
    value = text.strip().upper().removesuffix("B")
    unit = value[-1:] if value[-1:] in SIZE_FACTORS else ""
    number = value[: len(value) - len(unit)]
    if not number.isdigit() or int(number) == 0:
        raise InvalidInput(f"{name} must be a size such as 512M or 2G, not {text!r}")
    return int(number) * SIZE_FACTORS[unit]
