"""Typed keys of the API's application and requests."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bindrop.api.auth import Caller
from bindrop.api.jobs import Jobs
from bindrop.hub.hub import Hub
from bindrop.settings import Settings
from bindrop.store import Store

HUB = web.AppKey("hub", Hub)
#: The hub's store, for what a handler reads (or records) itself; changes to apps go
#: through the hub's operations (``Hub.config``, ``Hub.call``).
STORE = web.AppKey("store", Store)
SETTINGS = web.AppKey("settings", Settings)
JOBS = web.AppKey("jobs", Jobs)
#: Set when the server shuts down: streaming responses end instead of holding it up.
CLOSING = web.AppKey("closing", asyncio.Event)
CALLER = web.RequestKey("caller", Caller)
#: Set once a streamed answer (logs, events) has begun: an error can no longer be rendered.
STREAMING = web.RequestKey("streaming", bool)
