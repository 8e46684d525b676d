"""The oneshot unit that deletes an app's data directory when the app is destroyed.

The data lives where systemd put it (``StateDirectory=`` under ``DynamicUser=``:
``/var/lib/private/<dir>`` and a symlink ``/var/lib/<dir>``), which is on the systemd's side:
the hub may run on a host and talk to a machine's bus, so removing it is systemd's job too.
"""

from __future__ import annotations

from bindrop.domain.names import validate_app_name
from bindrop.units.app import SYSTEMD_STATE_ROOT, app_state_directory
from bindrop.units.names import SLICE
from bindrop.units.properties import UnitSpec, prop

PURGE_UNIT_PREFIX = "bindrop-purge-"
RM = "/bin/rm"


def purge_unit_name(app: str) -> str:
    return f"{PURGE_UNIT_PREFIX}{validate_app_name(app)}.service"


def build_purge_unit(app: str) -> UnitSpec:
    """A ``Type=oneshot`` unit running ``rm -rf`` on the app's data; its start job ends when
    the removal has. Pure."""
    state = app_state_directory(app)
    paths = [f"{SYSTEMD_STATE_ROOT}/private/{state}", f"{SYSTEMD_STATE_ROOT}/{state}"]
    return UnitSpec(purge_unit_name(app), (
        prop("Description", f"bindrop: delete the data of app {app}"),
        prop("CollectMode", "inactive-or-failed"),
        prop("Slice", SLICE),
        prop("Type", "oneshot"),
        prop("ExecStart", [(RM, [RM, "-rf", "--", *paths], False)]),
    ))
