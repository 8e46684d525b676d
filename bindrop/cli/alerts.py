"""``bindrop alerts show|set|test``: where the server sends alerts (one webhook)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from bindrop.cli.remote import emit, json_option, remote

Run = Callable[..., Any]


@click.group()
def alerts() -> None:
    """Alerts a person wants: the disk over its threshold, backups failing, an app that gave
    up, a failed deploy (and when each is good again), POSTed as JSON to one webhook.

    Example: bindrop alerts set --webhook https://hooks.example.com/bindrop
    """


def _print(state: dict[str, Any]) -> None:
    click.echo(f"webhook: {state.get('webhook') or 'none (alerts are off)'}")
    click.echo(f"sent {state.get('sent', 0)}, dropped {state.get('dropped', 0)}, "
               f"pending {state.get('pending', 0)}"
               + (f"; last error: {state['last_error']}" if state.get("last_error") else ""))


@alerts.command("show")
@json_option
@remote
def show(as_json: bool, run: Run) -> None:
    """Show where alerts go and how delivery went since the hub started.

    Example: bindrop alerts show --json
    """
    emit(run(lambda c: c.alerts()), as_json, _print)


@alerts.command("set")
@click.option("--webhook", metavar="URL", help="POST alerts (JSON) to this http(s) URL.")
@click.option("--off", is_flag=True, help="Send no alerts.")
@json_option
@remote
def set_cmd(webhook: str | None, off: bool, as_json: bool, run: Run) -> None:
    """Set the webhook alerts are POSTed to: a JSON body {kind, server, app, message, link, at}.

    Example: bindrop alerts set --webhook https://hooks.example.com/bindrop
    """
    if off == (webhook is not None):
        raise click.UsageError("give either --webhook URL or --off")
    emit(run(lambda c: c.set_alerts(None if off else webhook)), as_json, _print)


@alerts.command("test")
@json_option
@remote
def test(as_json: bool, run: Run) -> None:
    """Send a test alert to the webhook now; fails if it cannot be delivered.

    Example: bindrop alerts test
    """
    emit(run(lambda c: c.test_alert()), as_json, lambda _: "a test alert was delivered")
