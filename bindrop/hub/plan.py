"""Reconcile, planned: desired config + the units systemd has -> what the hub must do.

Pure: ``plan_reconcile`` reads nothing and writes nothing; the hub executes its steps in order.
Run at every hub start, it re-attaches to running units without restarting them, recreates
what is missing (after a reboot transient units are gone) and stops what no config asks for.

Unit instances: a release's first unit is ``bindrop-app-<app>-<release>``; a restart of the
same release needs a fresh name while the old one still serves, so later *generations* are
``<release>.<n>`` (``bindrop-app-blog-3.1.service``). Every instance of every process of one
generation shares it (``3.1_worker_2``; see ``bindrop.domain.processes``), and reconcile keeps
or stops a generation whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def instance_generation(instance: str) -> str:
    """The generation of an instance token: ``"3.2_worker_1"`` -> ``"3.2"``."""
    return instance.split("_", 1)[0]


def instance_release(instance: str) -> str:
    """The release an instance token belongs to: ``"3.2"`` -> ``"3"``."""
    return instance_generation(instance).split(".", 1)[0]


def instance_number(instance: str) -> int:
    """The generation number of an instance token: ``"3.2_web_2"`` -> 2, ``"3"`` -> 0."""
    _, _, n = instance_generation(instance).partition(".")
    return int(n) if n.isdigit() else 0


def next_instance(release: str, existing: Iterable[str]) -> str:
    """A token for a new unit of ``release`` that no existing instance uses."""
    taken = [instance_number(i) for i in existing if instance_release(i) == release]
    if not taken:
        return release
    return f"{release}.{max(taken) + 1}"


@dataclass(frozen=True)
class DesiredApp:
    """What the user wants of one app (from SQLite): running or not, and which release."""

    name: str
    running: bool
    release: int | None


@dataclass(frozen=True)
class ObservedUnit:
    """A bindrop app unit as systemd reports it. ``up`` = active, activating or reloading."""

    unit: str
    app: str
    instance: str
    up: bool


@dataclass(frozen=True)
class Adopt:
    """Keep this running unit, as the app's live instance: no restart, same MainPID."""

    app: str
    unit: str
    instance: str


@dataclass(frozen=True)
class Recreate:
    """Start the app's wanted release: nothing of it runs (after a reboot, say)."""

    app: str
    release: int


@dataclass(frozen=True)
class Redeploy:
    """Something else serves; deploy the wanted release through the zero-downtime path."""

    app: str
    release: int


@dataclass(frozen=True)
class StopUnit:
    unit: str
    reason: str


Step = Adopt | Recreate | Redeploy | StopUnit


def plan_reconcile(desired: Sequence[DesiredApp], observed: Sequence[ObservedUnit]) -> list[Step]:
    """The steps that bring what runs in line with what is wanted, app by app (sorted)."""
    wanted = {d.name: d for d in desired}
    by_app: dict[str, list[ObservedUnit]] = {}
    for unit in observed:
        if unit.up:
            by_app.setdefault(unit.app, []).append(unit)
    steps: list[Step] = []
    for app in sorted(set(wanted) | set(by_app)):
        up = sorted(by_app.get(app, []), key=lambda u: (instance_release(u.instance),
                                                        instance_number(u.instance)))
        want = wanted.get(app)
        if want is None:
            steps += [StopUnit(u.unit, f"no app named {app!r} is configured") for u in up]
        elif not want.running:
            steps += [StopUnit(u.unit, f"{app} is meant to be stopped") for u in up]
        elif want.release is None:
            steps += [StopUnit(u.unit, f"{app} has no release to run") for u in up]
        else:
            steps += _plan_running(want.name, want.release, up)
    return steps


def _plan_running(app: str, release: int, up: list[ObservedUnit]) -> list[Step]:
    mine = [u for u in up if instance_release(u.instance) == str(release)]
    others = [u for u in up if instance_release(u.instance) != str(release)]
    if mine:
        newest = max(instance_number(u.instance) for u in mine)
        keep = [u for u in mine if instance_number(u.instance) == newest]
        # A hub that died mid-deploy or mid-restart leaves a second generation; the wanted
        # release's newest one is the one that was (or was about to be) routed.
        return [*(Adopt(app, u.unit, u.instance) for u in keep),
                *(StopUnit(u.unit, f"{app} runs release {release} in {keep[0].unit}")
                  for u in [*others, *mine] if u not in keep)]
    if others:
        def rank(u: ObservedUnit) -> tuple[int, int]:
            rel = instance_release(u.instance)
            return (int(rel) if rel.isdigit() else -1, instance_number(u.instance))

        best = max(rank(u) for u in others)
        keep = [u for u in others if rank(u) == best]
        return [*(Adopt(app, u.unit, u.instance) for u in keep),
                *(StopUnit(u.unit, f"{app} keeps serving from {keep[0].unit} until release "
                               f"{release} is ready") for u in others if u not in keep),
                Redeploy(app, release)]
    return [Recreate(app, release)]
