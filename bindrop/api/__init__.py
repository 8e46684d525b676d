"""The control API: JSON over HTTP under /v1/, on a unix socket (root) and TCP (tokens).

    async with serve_api(hub, settings) as server:
        ...  # server.socket_path, server.tcp_port

``make_api_app`` assembles the aiohttp application; ``ROUTES`` lists every route once.
"""

from bindrop.api.app import make_api_app
from bindrop.api.routes import ROUTES
from bindrop.api.serve import ApiServer, serve_api

__all__ = ["ROUTES", "ApiServer", "make_api_app", "serve_api"]
