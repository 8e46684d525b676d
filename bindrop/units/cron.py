"""An app's scheduled job -> a transient timer and the oneshot service it starts. Pure.

The job runs exactly like the app (same dynamic user, data directory, environment, sandbox and
limits) because its service is derived from the app's own unit, less what only a server needs
(``PORT``, restarts) and with ``Type=oneshot``. systemd never starts a timer's service while
it is still active, so a job never runs twice at once.

A transient timer cannot set ``Unit=``: the service is the timer's aux unit of the same name.
Names use a dot between app and job (neither may contain one), so ``a-b``/``c`` and ``a``/``b-c``
cannot collide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bindrop.domain.names import validate_app_name
from bindrop.errors import InvalidInput
from bindrop.settings import Settings
from bindrop.units.app import AppSpec, ReleaseSpec, build_app_unit
from bindrop.units.properties import UnitSpec, prop

CRON_UNIT_PREFIX = "bindrop-cron-"
JOB_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
JOB_NAME_MAX = 32
#: Dropped from the app's unit: a job is not a server.
NOT_FOR_JOBS = frozenset({"Type", "Restart", "RestartUSec", "StartLimitIntervalUSec",
                          "StartLimitBurst", "SuccessExitStatus", "CollectMode", "Description"})
# The service is started by any port; the release spec needs one to be valid.
_NO_PORT = 1
TIMER_ACCURACY_USEC = 1_000_000


def validate_job_name(name: str) -> str:
    if not isinstance(name, str) or len(name) > JOB_NAME_MAX or not JOB_NAME.fullmatch(name):
        raise InvalidInput(f"job name {name!r} is not valid: use 1-{JOB_NAME_MAX} lowercase "
                           "letters, digits and '-', starting and ending with a letter or digit")
    return name


def cron_unit_names(app: str, job: str) -> tuple[str, str]:
    """``(timer, service)``: ``bindrop-cron-<app>.<job>.timer`` and ``.service``."""
    stem = f"{CRON_UNIT_PREFIX}{validate_app_name(app)}.{validate_job_name(job)}"
    return f"{stem}.timer", f"{stem}.service"


@dataclass(frozen=True)
class CronUnits:
    timer: UnitSpec
    service: UnitSpec


def build_cron_units(app: AppSpec, release: str, exec_path: str, args: tuple[str, ...],
                     job: str, schedule: str, settings: Settings) -> CronUnits:
    """The timer (``OnCalendar=schedule``) and the oneshot running ``exec_path args`` of
    ``release`` as ``app``. ``schedule`` must already be checked (``parse_calendar``)."""
    timer_name, service_name = cron_unit_names(app.name, job)
    base = build_app_unit(app, ReleaseSpec(release, exec_path, args, _NO_PORT), settings)
    properties = [prop("Description", f"bindrop app {app.name} job {job}"),
                  prop("Type", "oneshot")]
    for p in base.properties:
        if p.name in NOT_FOR_JOBS:
            continue
        if p.name == "Environment":
            env = [e for e in p.value  # type: ignore[attr-defined]
                   if not e.startswith(("PORT=", "BINDROP_PROCESS=", "BINDROP_INSTANCE="))]
            p = prop("Environment", [*env, "BINDROP_PROCESS=cron", f"BINDROP_JOB={job}"])
        elif p.name == "LogExtraFields":
            fields = [f for f in p.value  # type: ignore[attr-defined]
                      if not f.startswith((b"BINDROP_PROCESS=", b"BINDROP_INSTANCE="))]
            p = prop("LogExtraFields", [*fields, b"BINDROP_PROCESS=cron"])
        properties.append(p)
    timer = UnitSpec(timer_name, (
        prop("Description", f"bindrop app {app.name} job {job}: {schedule}"),
        prop("TimersCalendar", [("OnCalendar", schedule)]),
        prop("AccuracyUSec", TIMER_ACCURACY_USEC),
        # Keep the timer loaded after it elapsed (a spec with no next time): list shows it.
        prop("RemainAfterElapse", True),
    ))
    return CronUnits(timer, UnitSpec(service_name, tuple(properties)))
