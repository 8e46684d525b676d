"""How the API shows things: plain JSON-ready dicts of config, releases, live views, events.

Pure. Times are ISO 8601 text in UTC; systemd's microsecond timestamps become the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from bindrop.hub.state import AppView
from bindrop.store import AppConfig, Event, Release


class Metrics(Protocol):
    """What ``Manager.read_unit_metrics`` returns (read through the hub)."""

    @property
    def memory_current(self) -> int | None: ...
    @property
    def tasks_current(self) -> int | None: ...
    @property
    def cpu_usage_nsec(self) -> int | None: ...


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _usec(value: int) -> str | None:
    return datetime.fromtimestamp(value / 1e6, UTC).isoformat() if value else None


def app_dict(config: AppConfig) -> dict[str, Any]:
    return {
        "name": config.name,
        "hosts": list(config.hosts),
        "health_path": config.health_path,
        "health_timeout_s": config.health_timeout_s,
        "memory_max": config.memory_max,
        "cpu_quota": config.cpu_quota,
        "tasks_max": config.tasks_max,
        "on_demand": config.on_demand,
        "idle_timeout_s": config.idle_timeout_s,
        "liveness_interval_s": config.liveness_interval_s,
        "no_overlap": config.no_overlap,
        "desired_state": config.desired_state,
        "current_release": config.current_release,
        "system": config.system,
        "maintenance_message": config.maintenance_message,
        "body_limit": config.body_limit,
        "https_redirect": config.https_redirect,
        "created_at": _time(config.created_at),
        "updated_at": _time(config.updated_at),
    }


def view_dict(view: AppView | None) -> dict[str, Any]:
    """The live state; an app systemd knows nothing of is ``stopped``."""
    if view is None:
        return {"state": "stopped", "release": None, "unit": None, "port": None, "units": [],
                "deploying": False, "main_pid": None, "n_restarts": 0, "active_since": None,
                "problem": None, "instances": [], "gave_up": []}
    serving = {r.unit for r in view.serving}
    return {
        "state": str(view.state),
        "release": view.live_release,
        "unit": view.route.unit if view.route else None,
        "port": view.route.port if view.route else None,
        "units": list(view.units),
        "deploying": view.deploying,
        "main_pid": view.main_pid or None,
        "n_restarts": view.n_restarts,
        "active_since": _usec(view.active_since),
        "problem": view.problem,
        "instances": [{"unit": r.unit, "process": r.process, "instance": r.instance,
                       "port": r.port or None, "serving": r.unit in serving}
                      for r in view.instances],
        "gave_up": [{"unit": u, "problem": why} for u, why in view.gave_up],
    }


def release_dict(release: Release) -> dict[str, Any]:
    return {
        "app": release.app,
        "number": release.number,
        "sha256": release.sha256,
        "size": release.size,
        "kind": release.kind,
        "command": list(release.command),
        "created_by": release.created_by,
        "created_at": _time(release.created_at),
        "status": release.status,
        "reason": release.reason,
        "status_changed_at": _time(release.status_changed_at),
        "processes": (None if release.processes is None else
                      {k: list(v) for k, v in release.processes.items()}),
        "release_command": (None if release.release_command is None
                            else list(release.release_command)),
    }


def event_dict(event: Event) -> dict[str, Any]:
    return {"id": event.id, "at": _time(event.at), "kind": event.kind, "app": event.app,
            "message": event.message, "data": dict(event.data) if event.data else None}


def metrics_dict(metrics: Metrics | None) -> dict[str, Any] | None:
    if metrics is None:
        return None
    return {"memory_current": metrics.memory_current, "tasks_current": metrics.tasks_current,
            "cpu_usage_nsec": metrics.cpu_usage_nsec}
