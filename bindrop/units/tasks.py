"""An app's one-shot tasks: the release command of a deploy and one-off runs. Pure.

Both run exactly like the app (its dynamic user, data directory, environment, sandbox and
limits): the service is derived from the app's own unit, less what only a server needs
(``PORT``, restarts), with ``Type=oneshot`` (``exec`` for a run, which the caller follows).

Names start with ``bindrop-app-<app>-<release>`` like every unit of the app, but are no
instance token (``parse_app_unit_name`` returns None), so the state store never takes them
for an instance of a process:

    bindrop-app-blog-3_release.service      the release command of release 3
    bindrop-app-blog-3_run.5f2a9c1e.service  a one-off run with release 3
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bindrop.domain.names import validate_app_name
from bindrop.errors import InvalidInput
from bindrop.settings import Settings
from bindrop.units.app import AppSpec, ReleaseSpec, build_app_unit
from bindrop.units.names import APP_UNIT_PREFIX, APP_UNIT_SUFFIX
from bindrop.units.properties import UnitSpec, prop

NOT_FOR_TASKS = frozenset({"Type", "Restart", "RestartUSec", "StartLimitIntervalUSec",
                           "StartLimitBurst", "SuccessExitStatus", "CollectMode", "Description",
                           "LogExtraFields"})
_RUN_ID = re.compile(r"[0-9a-f]{8,32}")


@dataclass(frozen=True)
class TaskUnit:
    spec: UnitSpec
    kind: str  # "release" or "run"


def release_task_name(app: str, release: str) -> str:
    return f"{APP_UNIT_PREFIX}{validate_app_name(app)}-{release}_release{APP_UNIT_SUFFIX}"


def run_task_name(app: str, release: str, run_id: str) -> str:
    if not _RUN_ID.fullmatch(run_id):
        raise InvalidInput(f"run id {run_id!r} is not valid: use 8-32 lowercase hex digits")
    return f"{APP_UNIT_PREFIX}{validate_app_name(app)}-{release}_run.{run_id}{APP_UNIT_SUFFIX}"


def parse_run_unit_name(unit: str, app: str) -> bool:
    """True if ``unit`` is a one-off run of ``app`` (any release)."""
    stem = f"{APP_UNIT_PREFIX}{app}-"
    if not unit.startswith(stem) or not unit.endswith(APP_UNIT_SUFFIX):
        return False
    token = unit[len(stem):-len(APP_UNIT_SUFFIX)]
    release, sep, rest = token.partition("_run.")
    return bool(sep) and "-" not in release and bool(_RUN_ID.fullmatch(rest))


def build_release_task(app: AppSpec, release: str, exec_path: str, args: tuple[str, ...],
                       settings: Settings) -> UnitSpec:
    """The oneshot that runs a release's release command once, before its instances start.
    Its start job ends when the command does (``JobFailed`` if it exits non-zero, or runs
    longer than ``settings.release_timeout_s``: systemd stops it then)."""
    spec = _task(app, release, exec_path, args, release_task_name(app.name, release),
                 "release", "oneshot", f"bindrop app {app.name} release {release}: "
                 "release command", settings)
    # A oneshot has no start timeout by default: one that never ends would hold the deploy,
    # and every later action of the app, forever.
    timeout = prop("TimeoutStartUSec", max(1, int(settings.release_timeout_s * 1_000_000)))
    return UnitSpec(spec.name, (*spec.properties, timeout))


def build_run_task(app: AppSpec, release: str, run_id: str, exec_path: str,
                   args: tuple[str, ...], settings: Settings) -> UnitSpec:
    """A one-off run of ``exec_path args`` with ``release``; ``Type=exec`` so the start job
    ends as soon as it runs (the caller follows its output and waits for its end). It stays
    loaded after it exits (``RemainAfterExit``) until the caller read its exit status and
    stopped it."""
    spec = _task(app, release, exec_path, args, run_task_name(app.name, release, run_id),
                 "run", "exec", f"bindrop app {app.name} release {release}: one-off run",
                 settings)
    return UnitSpec(spec.name, (*spec.properties, prop("RemainAfterExit", True)))


def _task(app: AppSpec, release: str, exec_path: str, args: tuple[str, ...], name: str,
          kind: str, service_type: str, description: str, settings: Settings) -> UnitSpec:
    base = build_app_unit(app, ReleaseSpec(release, exec_path, args, None), settings)
    marks = {"BINDROP_APP": app.name, "BINDROP_RELEASE": release, "BINDROP_PROCESS": kind}
    properties = [prop("Description", description), prop("Type", service_type),
                  # a failed task must stay readable (exit status) until the hub has looked
                  prop("CollectMode", "inactive")]
    for p in base.properties:
        if p.name in NOT_FOR_TASKS:
            continue
        if p.name == "Environment":
            env = [e for e in p.value  # type: ignore[attr-defined]
                   if not e.startswith(("BINDROP_PROCESS=", "BINDROP_INSTANCE="))]
            p = prop("Environment", [*env, f"BINDROP_PROCESS={kind}"])
        properties.append(p)
    properties.append(prop("LogExtraFields", [f"{k}={v}".encode() for k, v in marks.items()]))
    return UnitSpec(name, tuple(properties))
