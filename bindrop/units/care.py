"""A server-care run (backup, verify, restore, gc, disk) -> the oneshot transient unit the hub
starts. Pure.

Each run is its own unit, ``bindrop-care-<kind>-<run>.service``: systemd runs the work (this
very bindrop, ``bindrop care-run KIND …``), journald keeps its output (``journalctl
BINDROP_CARE=backup`` shows every backup run, ``-u`` one of them), and the hub waits for its
start job, which for ``Type=oneshot`` ends when the work has. ``CollectMode=inactive-or-failed``
removes the unit once it ended, so no name lingers; its outcome is the job's result and what
the run reported to the hub.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from bindrop.errors import InvalidInput
from bindrop.units.properties import UnitSpec, prop

CARE_UNIT_PREFIX = "bindrop-care-"
#: What a care unit may do; each is a subcommand of ``bindrop care-run``.
CARE_KINDS = ("backup", "verify", "restore-prepare", "restore-swap", "restore-discard", "gc",
              "disk", "disk-check", "server-restore")
#: A stuck upload must not hold the next day's run.
TIMEOUT_START_USEC = 2 * 3600 * 1_000_000
#: Apps keep the CPU and the disk first.
NICE = 10
IOPRIO_CLASS_IDLE = 3
_RUN = re.compile(r"[0-9]{1,12}")


def care_unit_name(kind: str, run: str) -> str:
    """``bindrop-care-<kind>-<run>.service``; ``InvalidInput`` for an unknown kind or run."""
    if kind not in CARE_KINDS or not _RUN.fullmatch(run):
        raise InvalidInput(f"no care run {kind!r} {run!r}")
    return f"{CARE_UNIT_PREFIX}{kind}-{run}.service"


def build_care_unit(kind: str, run: str, python: str, args: Sequence[str],
                    environment: Mapping[str, str]) -> UnitSpec:
    """The oneshot running ``python -m bindrop care-run KIND ARGS`` with ``environment``
    (which says where bindrop's files are and how to reach the hub)."""
    if not python.startswith("/"):
        raise InvalidInput(f"the Python running bindrop must be an absolute path, not {python!r}")
    for arg in args:
        if not arg.isprintable():
            raise InvalidInput(f"a care run's argument must be printable text, not {arg!r}")
    argv = [python, "-m", "bindrop", "care-run", kind, *args]
    marks = {"BINDROP_CARE": kind, "BINDROP_CARE_RUN": run}
    env = {**environment, **marks, "PYTHONUNBUFFERED": "1"}
    return UnitSpec(care_unit_name(kind, run), (
        prop("Description", f"bindrop {kind} (run {run})"),
        prop("CollectMode", "inactive-or-failed"),
        prop("Type", "oneshot"),
        # No $VAR expansion wanted: escape what systemd would expand.
        prop("ExecStart", [(python, [a.replace("$", "$$") for a in argv], False)]),
        prop("Environment", [f"{k}={env[k]}" for k in sorted(env)]),
        prop("TimeoutStartUSec", TIMEOUT_START_USEC),
        prop("Nice", NICE),
        prop("IOSchedulingClass", IOPRIO_CLASS_IDLE),
        prop("SyslogIdentifier", f"bindrop-{kind}"),
        prop("LogExtraFields", [f"{k}={v}".encode() for k, v in marks.items()]),
    ))
