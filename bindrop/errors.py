"""bindrop's one exception tree.

Every error bindrop raises on purpose is a ``BindropError``. Each class carries the HTTP
``status`` the control API answers with and a stable snake_case ``code`` that clients may
match on. Messages are written for a person and say what to do next.

    BindropError
    ├── InvalidInput        400 invalid_input      bad name, host, env key, limit, size
    ├── NotFound            404 not_found          no such app, release, unit, machine
    ├── Conflict            409 conflict           exists already, or not in a state for this
    │   └── UnitExists      409 unit_exists        systemd still holds a unit of that name
    ├── Unauthorized        401 unauthorized       no token, or a token that is not valid
    ├── Forbidden           403 forbidden          a valid token without the right scope
    ├── TooLarge            413 too_large          an upload or body over its limit
    ├── SystemdError        502 systemd_error      systemd refused or failed a call
    │   ├── JobFailed       502 job_failed         a start/stop job ended other than "done"
    │   └── BusUnavailable  503 bus_unavailable    no connection to the system bus
    ├── NotReady            502 not_ready          a release failed its readiness check
    ├── MachineError        500 machine_error      a private machine failed to boot or stop
    ├── CopyFailed          500 copy_failed        a database or data copy failed (disk full, …)
    ├── BackupFailed        500 backup_failed      a backup, upload or restore step failed
    ├── DamagedBackup       422 damaged_backup     a backup fails its checks: not restored
    ├── DeliveryFailed      502 delivery_failed    an alert's webhook failed or was unreachable
    └── Cancelled           409 cancelled          superseded or shut down before it ran

Foreign errors (dbus-fast, sqlite, aiohttp) are translated into these at exactly one
boundary each: ``bindrop.systemd.errors`` for D-Bus.
"""

from __future__ import annotations


class BindropError(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class InvalidInput(BindropError):
    status = 400
    code = "invalid_input"


class NotFound(BindropError):
    status = 404
    code = "not_found"


class Conflict(BindropError):
    status = 409
    code = "conflict"


class UnitExists(Conflict):
    code = "unit_exists"


class Unauthorized(BindropError):
    status = 401
    code = "unauthorized"


class Forbidden(BindropError):
    status = 403
    code = "forbidden"


class TooLarge(BindropError):
    status = 413
    code = "too_large"


class SystemdError(BindropError):
    status = 502
    code = "systemd_error"


class JobFailed(SystemdError):
    code = "job_failed"

    def __init__(self, message: str, *, unit: str, result: str) -> None:
        super().__init__(message)
        self.unit = unit
        self.result = result


class BusUnavailable(SystemdError):
    status = 503
    code = "bus_unavailable"


class NotReady(BindropError):
    status = 502
    code = "not_ready"


class MachineError(BindropError):
    code = "machine_error"


class CopyFailed(BindropError):
    code = "copy_failed"


class BackupFailed(BindropError):
    code = "backup_failed"


class DamagedBackup(BindropError):
    status = 422
    code = "damaged_backup"


class DeliveryFailed(BindropError):
    status = 502
    code = "delivery_failed"


class Cancelled(BindropError):
    status = 409
    code = "cancelled"
