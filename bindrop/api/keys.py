"""Typed keys of the API's application and requests."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bindrop.api.auth import Caller
from bindrop.api.jobs import Jobs
from bindrop.hub.hub import Hub
from bindrop.settings import Settings

HUB = web.AppKey("hub", Hub)
SETTINGS = web.AppKey("settings", Settings)
JOBS = web.AppKey("jobs", Jobs)
#: Set when the server shuts down: streaming responses end instead of holding it up.
CLOSING = web.AppKey("closing", asyncio.Event)
CALLER = web.RequestKey("caller", Caller)
#: Set once a streamed answer (logs, events) has begun: an error can no longer be rendered.
STREAMING = web.RequestKey("streaming", bool)
