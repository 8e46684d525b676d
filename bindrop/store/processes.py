"""An app's process types as the user wants them: instance count, memory limit, health path.

Desired config only (how many of each should run); which instances run is systemd's to say.
A process type with no row runs one instance with the app's own limits and health check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlite_utils import Database

from bindrop.domain.processes import validate_process_name
from bindrop.errors import InvalidInput
from bindrop.store.apps import require_app
from bindrop.store.connection import write_transaction

HEALTH_PATH_MAX = 1024


@dataclass(frozen=True)
class ProcessConfig:
    """``count`` instances; ``memory_max`` (bytes) and ``health_path`` override the app's."""

    count: int = 1
    memory_max: int | None = None
    health_path: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise InvalidInput(f"instance count {self.count!r} is not valid: use 0 or more")
        if self.memory_max is not None and (
                isinstance(self.memory_max, bool) or not isinstance(self.memory_max, int)
                or self.memory_max <= 0):
            raise InvalidInput(f"memory limit {self.memory_max!r} is not valid")
        path = self.health_path
        if path is not None and (not isinstance(path, str) or not path.startswith("/")
                                 or len(path) > HEALTH_PATH_MAX
                                 or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in path)):
            raise InvalidInput(f"health path {path!r} is not valid: use a path such as /up")


def get_processes(db: Database, app: str) -> dict[str, ProcessConfig]:
    """The app's stored process settings by name. ``NotFound`` for a missing app."""
    require_app(db, app)
    return {row["process"]: ProcessConfig(row["count"], row["memory_max"], row["health_path"])
            for row in db.query("SELECT * FROM app_processes WHERE app = ? ORDER BY process",
                                [app])}


def set_processes(db: Database, app: str, configs: Mapping[str, ProcessConfig]) -> None:
    """Store the given processes' settings (others stay), all or none."""
    rows = [(app, validate_process_name(name), c.count, c.memory_max, c.health_path)
            for name, c in configs.items()]
    with write_transaction(db):
        require_app(db, app)
        db.conn.executemany(
            "INSERT OR REPLACE INTO app_processes (app, process, count, memory_max, "
            "health_path) VALUES (?, ?, ?, ?, ?)", rows)
