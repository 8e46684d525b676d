"""One settings object for the whole of bindrop.

Every path is derived from one ``root`` so that tests and a private machine move everything
by changing one value. Built from an injected environment mapping, never read from
``os.environ`` behind the caller's back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bindrop.errors import InvalidInput

SYSTEM_BUS_DEFAULT = "unix:path=/run/dbus/system_bus_socket"


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

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from ``BINDROP_*`` variables in ``environ``; reads nothing else."""
        root = Path(environ.get("BINDROP_ROOT", "/"))
        if not root.is_absolute():
            raise InvalidInput(f"BINDROP_ROOT must be an absolute path, not {root!s}")
        machines = environ.get("BINDROP_MACHINES_DIR")
        return cls(
            root=root,
            bus_address=environ.get("BINDROP_BUS_ADDRESS")
            or environ.get("DBUS_SYSTEM_BUS_ADDRESS")
            or SYSTEM_BUS_DEFAULT,
            machines_dir=Path(machines) if machines else _default_machines_dir(environ),
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
