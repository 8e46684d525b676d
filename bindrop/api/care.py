"""Server care through the API: ``bindrop backup``/``disk``/``gc`` record their outcomes as
events here (they run as separate processes; only the hub writes SQLite), and the server
page reads the latest of them back."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bindrop.api.bodies import only, read_json
from bindrop.api.keys import STORE
from bindrop.api.views import event_dict
from bindrop.errors import InvalidInput
from bindrop.store import Store

#: Event kinds a care command may record; others (deploys, crashes) are the hub's own.
CARE_KINDS = frozenset({
    "backup_succeeded", "backup_failed", "backup_restored", "restore_failed",
    "disk_over_threshold", "disk_back_under", "disk_webhook_failed", "gc_finished",
    "server_restored",
})
LAST = {
    "last_backup": ("backup_succeeded",),
    "last_backup_failure": ("backup_failed", "restore_failed"),
    "last_restore": ("backup_restored", "server_restored"),
    "disk": ("disk_over_threshold", "disk_back_under"),
}


async def record_event(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    only(body, {"kind", "app", "message", "data"}, "an event")
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in CARE_KINDS:
        raise InvalidInput(f"event kind {kind!r} cannot be recorded through the API; use one "
                           f"of: {', '.join(sorted(CARE_KINDS))}")
    message = body.get("message", "")
    app, data = body.get("app"), body.get("data")
    if app is not None and not isinstance(app, str):
        raise InvalidInput("app must be an app name or null")
    if not isinstance(message, str):
        raise InvalidInput("message must be text")
    if data is not None and not isinstance(data, dict):
        raise InvalidInput("data must be a JSON object or null")
    return event_dict(request.app[STORE].add_event(kind, app, message, data))


def care_summary(store: Store) -> dict[str, Any]:
    """The newest backup, backup failure, restore and disk check, each an event or None."""
    summary: dict[str, Any] = {}
    for key, kinds in LAST.items():
        event = store.last_event_of(kinds)
        summary[key] = event_dict(event) if event is not None else None
    return summary
