"""JSON schemas of what the API answers, for the OpenAPI document. Pure data.

They describe the dicts ``bindrop.api.views`` builds; tests/unit/test_api_schemas.py checks
the two agree.
"""

from __future__ import annotations

from typing import Any

_S: dict[str, Any] = {"type": "string"}
_S0: dict[str, Any] = {"type": ["string", "null"]}
_I: dict[str, Any] = {"type": "integer"}
_I0: dict[str, Any] = {"type": ["integer", "null"]}
_B: dict[str, Any] = {"type": "boolean"}
_N: dict[str, Any] = {"type": "number"}
_N0: dict[str, Any] = {"type": ["number", "null"]}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": sorted(properties), "properties": properties}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


LIVE = _object({
    "state": {"type": "string", "enum": ["running", "starting", "restarting", "stopped",
                                         "crash-looping", "failed-readiness"]},
    "release": _S0, "unit": _S0, "port": _I0, "units": {"type": "array", "items": _S},
    "deploying": _B, "main_pid": _I0, "n_restarts": _I, "active_since": _S0, "problem": _S0,
    "instances": {"type": "array", "items": _object({
        "unit": _S, "process": _S, "instance": _S, "port": _I0, "serving": _B})},
    "gave_up": {"type": "array", "items": _object({"unit": _S, "problem": _S})},
})
APP = _object({
    "name": _S, "hosts": {"type": "array", "items": _S}, "health_path": _S0,
    "health_timeout_s": _N, "memory_max": _I0, "cpu_quota": _I0, "tasks_max": _I0,
    "on_demand": _B, "idle_timeout_s": _N, "liveness_interval_s": _N0, "no_overlap": _B,
    "desired_state": {"type": "string", "enum": ["running", "stopped"]},
    "current_release": _I0, "system": _B, "maintenance_message": _S0, "body_limit": _I,
    "https_redirect": _B, "no_tls": _B, "allow_http": _B, "hsts": _B,
    "created_at": _S0, "updated_at": _S0,
})
RELEASE = _object({
    "app": _S, "number": _I, "sha256": _S, "size": _I,
    "kind": {"type": "string", "enum": ["binary", "bundle"]},
    "command": {"type": "array", "items": _S}, "created_by": _S, "created_at": _S0,
    "status": {"type": "string", "enum": ["pending", "live", "previous", "failed"]},
    "reason": _S0, "status_changed_at": _S0,
    "processes": {"type": ["object", "null"],
                  "additionalProperties": {"type": "array", "items": _S}},
    "release_command": {"type": ["array", "null"], "items": _S},
})
OUTCOME = _object({
    "app": _S, "action": _S, "release": _S0, "unit": _S0, "port": _I0,
    "stopped": {"type": "array", "items": _S}, "message": _S,
    "release_log": {"type": "array", "items": _S},
})
TOKEN = _object({
    "name": _S, "scope": {"type": "string", "enum": ["admin", "read-only"]},
    "created_at": _S, "expires_at": _S0, "last_used_at": _S0, "revoked": _B,
})
EVENT = _object({"id": _I, "at": _S0, "kind": _S, "app": _S0, "message": _S,
                 "data": {"type": ["object", "null"]}})

SCHEMAS: dict[str, dict[str, Any]] = {
    "Live": LIVE, "App": APP, "Release": RELEASE, "Outcome": OUTCOME, "Token": TOKEN,
    "Event": EVENT,
}

#: What each kind of answer is; endpoints name one of these (``Endpoint.returns``).
APP_WITH_LIVE = {"allOf": [_ref("App"), _object({"live": _ref("Live")})]}
ANSWERS: dict[str, dict[str, Any]] = {
    "app": APP_WITH_LIVE,
    "apps": _object({"apps": {"type": "array", "items": APP_WITH_LIVE}}),
    "releases": _object({"releases": {"type": "array", "items": _ref("Release")}}),
    "release": _ref("Release"),
    "outcome_or_job": {"oneOf": [_ref("Outcome"), _object({"job": _S})]},
    "tokens": _object({"tokens": {"type": "array", "items": _ref("Token")}}),
    "token": _ref("Token"),
    "new_token": {"allOf": [_ref("Token"), _object({"token": _S})]},
    "env": _object({"app": _S, "env": {"type": "object", "additionalProperties": _S},
                    "masked": _B, "restarted": {"oneOf": [_ref("Outcome"), {"type": "null"}]}}),
    "whoami": _object({"name": _S, "scope": {"type": "string", "enum": ["admin", "read-only"]},
                       "admin": _B}),
    "services": _object({"services": {"type": "array", "items": _object({
        "unit": _S, "description": _S, "active_state": _S, "sub_state": _S})}}),
    "events": _object({"events": {"type": "array", "items": _ref("Event")}}),
    "system_app": _object({"app": _S, "host": _S, "release": _I,
                           "changed": {"type": "array", "items": _S}}),
}
