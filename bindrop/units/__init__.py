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
from bindrop.units.limits import Limits, format_bytes, parse_cpu, parse_memory
from bindrop.units.names import (
    APP_UNIT_PREFIX,
    APP_UNIT_SUFFIX,
    RESERVED_ENV_KEYS,
    SLICE,
    app_unit_name,
    dynamic_user_name,
    parse_app_unit_name,
    validate_app_name,
    validate_env_key,
    validate_release_id,
)
from bindrop.units.properties import PROPERTY_SIGNATURES, Property, UnitSpec, prop
from bindrop.units.render import render_unit_file
from bindrop.units.timespan import format_usec

__all__ = [
    "APP_UNIT_PREFIX",
    "APP_UNIT_SUFFIX",
    "PROPERTY_SIGNATURES",
    "RESERVED_ENV_KEYS",
    "SLICE",
    "AppSpec",
    "Limits",
    "Property",
    "ReleaseSpec",
    "UnitSpec",
    "app_state_directory",
    "app_unit_name",
    "build_app_unit",
    "dynamic_user_name",
    "format_bytes",
    "format_usec",
    "parse_app_unit_name",
    "parse_cpu",
    "parse_memory",
    "prop",
    "render_unit_file",
    "validate_app_name",
    "validate_env_key",
    "validate_release_id",
]
