"""``bindrop dashboard serve|setup``: run the dashboard, or have the hub set it up."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from bindrop.cli.lazy import LazyGroup
from bindrop.cli.remote import emit, json_option, remote
from bindrop.client.servers import DEFAULT_DASHBOARD_HOST

Run = Callable[..., Any]


@click.group(cls=LazyGroup, lazy={"serve": "bindrop.serve.dashboard:serve"})
def dashboard() -> None:
    """The web dashboard: a system app the hub runs at the dashboard host.

    Example: bindrop dashboard setup --host dashboard.example.com
    """


@dashboard.command()
@click.option("--host", default=lambda: os.environ.get("BINDROP_DASHBOARD_HOST")
              or DEFAULT_DASHBOARD_HOST, show_default=DEFAULT_DASHBOARD_HOST,
              help="Host at which the proxy serves the dashboard. [env: BINDROP_DASHBOARD_HOST]")
@json_option
@remote
def setup(host: str, as_json: bool, run: Run) -> None:
    """Have the hub create (or update) the dashboard app and run it; idempotent.

    Example: bindrop dashboard setup --host dashboard.example.com --json
    """
    emit(run(lambda c: c.setup_dashboard(host)), as_json,
         lambda done: f"dashboard at {done['host']} (release {done['release']}): "
                      f"{', '.join(done['changed']) or 'unchanged'}")
