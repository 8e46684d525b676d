"""``/v1/bucket``: the bucket release blobs and backups go to (``bindrop bucket``).

The work (care.env, the blob store's remote, reaching the bucket) is the server's
``BucketControl``, given to the API by the hub's entry point; without one, 409.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from aiohttp import web

from bindrop.api.bodies import read_json
from bindrop.errors import Conflict


class BucketControl(Protocol):
    """Blocking calls (they reach the bucket): the handlers run them in a thread."""

    def show(self) -> dict[str, Any]: ...

    def set(self, values: Mapping[str, Any]) -> dict[str, Any]: ...

    def off(self) -> dict[str, Any]: ...


BUCKET = web.AppKey("bucket", BucketControl)


def _control(request: web.Request) -> BucketControl:
    control = request.app.get(BUCKET)
    if control is None:
        raise Conflict("this hub has no bucket settings (it runs without bindrop.service)")
    return control


async def show_bucket(request: web.Request) -> dict[str, Any]:
    return await asyncio.to_thread(_control(request).show)


async def set_bucket(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    return await asyncio.to_thread(_control(request).set, body)


async def bucket_off(request: web.Request) -> dict[str, Any]:
    return await asyncio.to_thread(_control(request).off)
