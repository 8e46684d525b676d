"""Releases: streamed uploads (cut off early past the limit) and the list of an app's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bindrop.api.bodies import parse_command, parse_processes
from bindrop.api.keys import CALLER, HUB, SETTINGS, STORE
from bindrop.api.views import release_dict
from bindrop.domain.sizes import format_bytes
from bindrop.errors import InvalidInput, TooLarge
from bindrop.store.releases import ReleaseKind

CHUNK = 256 * 1024


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"the upload is larger than the limit of {format_bytes(limit, 'exact')}; "
                    "make the build smaller or raise BINDROP_UPLOAD_LIMIT on the server")


async def check_upload_size(request: web.Request) -> web.StreamResponse | None:
    """The expect handler of uploads (``Expect: 100-continue``): refuse by Content-Length
    before the client sends the body. Runs before the middlewares, so it answers itself."""
    limit = request.app[SETTINGS].upload_limit
    if request.content_length is not None and request.content_length > limit:
        return await _cut_off(request, _too_large(limit))
    if request.headers.get("Expect", "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0
    return None


async def upload_release(request: web.Request) -> dict[str, Any] | web.StreamResponse:
    hub = request.app[HUB]
    app = request.match_info["app"]
    kind = request.query.get("kind", "binary")
    if kind not in ("binary", "bundle"):
        raise InvalidInput(f"kind={kind!r} is not valid: use kind=binary or kind=bundle")
    release_kind: ReleaseKind = "bundle" if kind == "bundle" else "binary"
    command = parse_command(request.query.get("cmd"))
    processes = parse_processes(request.query.get("processes"))
    release_cmd = request.query.get("release_cmd")
    release_command = parse_command(release_cmd) if release_cmd else None
    limit = request.app[SETTINGS].upload_limit
    if request.content_length is not None and request.content_length > limit:
        return await _cut_off(request, _too_large(limit))

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_chunked(CHUNK):
            yield chunk

    try:
        release = await hub.config.upload_release(
            app, body(), kind=release_kind, command=command,
            created_by=request[CALLER].name, max_size=limit, processes=processes,
            release_command=release_command)
    except TooLarge:
        return await _cut_off(request, _too_large(limit))
    return release_dict(release)


async def _cut_off(request: web.Request, error: TooLarge) -> web.StreamResponse:
    """Send the 413 now, then close without reading (or lingering over) the rest of the
    body: the bytes past the limit are never taken in."""
    response = web.json_response(error.to_dict(), status=error.status)
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response


async def list_releases(request: web.Request) -> dict[str, Any]:
    store = request.app[STORE]
    app = request.match_info["app"]
    return {"releases": [release_dict(r) for r in store.list_releases(app)]}
