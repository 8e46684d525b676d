"""Reading what a request sends: JSON bodies and query values, checked at the edge.

Pure functions of already-read data (plus ``read_json``, which reads the body). Each raises
``InvalidInput`` naming the field and what to send instead; nothing is written before they
pass.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bindrop.domain.limits import parse_cpu, parse_memory
from bindrop.errors import InvalidInput
from bindrop.hub.config import UPDATABLE
from bindrop.store import AppConfig

JSON_BODY_MAX = 1024 * 1024
CREATE_FIELDS = frozenset({"name", *UPDATABLE} - {"maintenance_message"})
LIMIT_FIELDS = ("memory_max", "cpu_quota", "tasks_max")
LINES_MAX = 10_000
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")


async def read_json(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object; ``{}`` for an empty body when not ``required``."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise InvalidInput("send a JSON object in the request body")
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object ({...})")
    return body


def only(body: Mapping[str, Any], allowed: frozenset[str] | set[str], what: str) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown field {', '.join(map(repr, unknown))} in {what}; "
                           f"known fields are: {', '.join(sorted(allowed))}")


def parse_limit(field: str, value: object) -> int | None:
    """A limit from JSON: null (no limit), a number, or text such as "256M" or "50%"."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be a number or text such as 256M, not {value!r}")
    if isinstance(value, str):
        if field == "memory_max":
            return parse_memory(value)
        if field == "cpu_quota":
            return parse_cpu(value)
        if value.strip().isdigit():
            return int(value)
        raise InvalidInput(f"{field} {value!r} is not valid: use a whole number")
    if isinstance(value, int):
        return value
    raise InvalidInput(f"{field} must be a number or text such as 256M or 50%, not {value!r}")


def parse_changes(body: Mapping[str, Any], allowed: frozenset[str], what: str
                  ) -> dict[str, object]:
    """App settings from JSON (limits may be given as text); the store checks the values."""
    only(body, allowed, what)
    changes: dict[str, object] = {}
    for key, value in body.items():
        if key in LIMIT_FIELDS:
            changes[key] = parse_limit(key, value)
        elif key == "hosts":
            if not isinstance(value, list) or not all(isinstance(h, str) for h in value):
                raise InvalidInput("hosts must be a list of host names such as "
                                   '["example.com"]')
            changes[key] = tuple(value)
        else:
            changes[key] = value
    return changes


def parse_new_app(body: Mapping[str, Any]) -> AppConfig:
    changes = parse_changes(body, CREATE_FIELDS, "a new app")
    name = changes.pop("name", None)
    if not isinstance(name, str):
        raise InvalidInput('a new app needs a "name" (1-40 lowercase letters, digits and -)')
    if not changes.get("hosts"):
        raise InvalidInput(f'a new app needs "hosts": at least one, such as ["{name}.example.com"]')
    return AppConfig(name=name, desired_state="stopped", **changes)  # type: ignore[arg-type]


def parse_env(body: Mapping[str, Any]) -> dict[str, str]:
    if not body:
        raise InvalidInput('send the variables to set as a JSON object, e.g. {"DEBUG": "1"}')
    for key, value in body.items():
        if not isinstance(value, str):
            raise InvalidInput(f"the value of {key} must be text (a JSON string), "
                               f"not {type(value).__name__}")
    return dict(body)


def parse_command(text: str | None) -> list[str]:
    """The ``cmd`` query value: a JSON list of strings (absent: no arguments)."""
    if text is None or text == "":
        return []
    try:
        command = json.loads(text)
    except ValueError:
        command = None
    if not isinstance(command, list) or not all(isinstance(a, str) for a in command):
        raise InvalidInput('cmd must be a JSON list of strings, e.g. ["./server", "--fast"]')
    return command


def parse_processes(text: str | None) -> dict[str, list[str]] | None:
    """The ``processes`` query value: a JSON object of process name -> list of strings."""
    if text is None or text == "":
        return None
    try:
        found = json.loads(text)
    except ValueError:
        found = None
    if not isinstance(found, dict) or not all(
            isinstance(v, list) and all(isinstance(a, str) for a in v) for v in found.values()):
        raise InvalidInput('processes must be a JSON object such as {"worker": ["--worker"]}')
    return found


def query_flag(query: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = query.get(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise InvalidInput(f"{name}={value!r} is not valid: use {name}=1 or {name}=0")


def query_int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = query.get(name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidInput(f"{name}={value!r} is not valid: use a whole number from {low} to "
                           f"{high}")
    return int(value)
