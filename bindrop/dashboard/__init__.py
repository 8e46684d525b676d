"""The dashboard: bindrop's own web UI, a system app the hub runs like any other.

Server-rendered pages (aiohttp + jinja2) with live updates over server-sent events, made from
the control API alone (``bindrop.client``): the dashboard never touches SQLite or systemd.
It holds no token of its own; each request carries the token of the person logged in, so a
read-only token gives a read-only dashboard by the API's own rules.
"""

from bindrop.dashboard.app import make_dashboard_app

__all__ = ["make_dashboard_app"]
