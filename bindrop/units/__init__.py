"""Pure unit building: app + release + settings -> unit name and transient properties.

No IO here (no D-Bus, no asyncio, no SQLite): ``bindrop.systemd`` turns a ``UnitSpec`` into
Variants and starts it; ``render_unit_file`` shows the same spec to people.
"""

from bindrop.units.app import (
    AppSpec,
    ReleaseSpec,
    app_state_directory,
    build_app_unit,
)
from bindrop.units.names import (
    APP_UNIT_PREFIX,
    APP_UNIT_SUFFIX,
    SLICE,
    app_unit_name,
    dynamic_user_name,
    parse_app_unit_name,
)
from bindrop.units.properties import PROPERTY_SIGNATURES, Property, UnitSpec, prop
from bindrop.units.render import render_unit_file

__all__ = [
    "APP_UNIT_PREFIX",
    "APP_UNIT_SUFFIX",
    "PROPERTY_SIGNATURES",
    "SLICE",
    "AppSpec",
    "Property",
    "ReleaseSpec",
    "UnitSpec",
    "app_state_directory",
    "app_unit_name",
    "build_app_unit",
    "dynamic_user_name",
    "parse_app_unit_name",
    "prop",
    "render_unit_file",
]
