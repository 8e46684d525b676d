"""Where a bundle's parts live on a server. Pure: paths from settings, no IO."""

from __future__ import annotations

from pathlib import Path

from bindrop.settings import Settings
from bindrop.units.app import SYSTEMD_STATE_ROOT, app_state_directory

#: The hub's unit: stopped while an import swaps the database, started after.
HUB_UNIT = "bindrop.service"


def app_data_dir(settings: Settings, app: str) -> Path:
    """The real directory of an app's data: ``StateDirectory=`` under ``DynamicUser=`` lives
    in /var/lib/private (``/var/lib/<dir>`` is systemd's symlink to it)."""
    private = Path(SYSTEMD_STATE_ROOT.lstrip("/")) / "private" / app_state_directory(app)
    return settings.root / private


def apps_data_root(settings: Settings) -> Path:
    return app_data_dir(settings, "x").parent
