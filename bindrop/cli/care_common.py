"""What the server-care commands (backup, disk, gc) share: following a care run on the
server to its end, with its progress on stderr.

These commands act on the server named by ``--server`` / ``BINDROP_SERVER`` over any
transport: the hub starts the work as systemd units there; nothing here touches local files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import click

from bindrop.client.client import Client, RemoteError

POLL_S = 0.5
#: The status each error code the hub reports has in the API (a failed run answers 200).
_STATUS = {"damaged_backup": 422, "not_found": 404, "invalid_input": 400, "conflict": 409}


def wait_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--wait", "queue", is_flag=True,
        help="If another backup, verify, restore or gc is running, wait for it instead of "
             "failing.")(command)


async def follow(client: Client, start: Callable[[Client], Awaitable[Any]],
                 quiet: bool) -> dict[str, Any]:
    """Start a run with ``start`` and poll it to its end, echoing its progress on stderr
    (unless ``quiet``). Its result; a failed run raises ``RemoteError`` with its code."""
    run: dict[str, Any] = await start(client)
    shown = ""
    while True:
        if not quiet and run.get("progress") and run["progress"] != shown:
            shown = run["progress"]
            click.echo(f"{run['kind']} {run['id']}: {shown}", err=True)
        if run.get("state") in ("succeeded", "failed"):
            break
        await asyncio.sleep(POLL_S)
        run = await client.care_run(str(run["id"]))
    if run["state"] == "failed":
        error = run.get("error") or {}
        code = str(error.get("code", "failed"))
        units = run.get("units") or []
        where = f" (journalctl -u {units[-1]} on the server)" if units else ""
        raise RemoteError(str(error.get("message", "the run failed")) + where,
                          status=_STATUS.get(code, 500), code=code)
    result: dict[str, Any] = run.get("result") or {}
    return result
