"""``bindrop metrics APP`` (an app's traffic and resources over time) and ``bindrop top``
(every app, live, refreshing in place like ``pm2 monit``)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any

import click

from bindrop.cli.remote import emit_json, json_option, remote, table
from bindrop.client.client import Client
from bindrop.domain.sizes import format_bytes

_CLEAR = "\x1b[H\x1b[2J"  # home, then clear the screen
_SPARKS = " ▁▂▃▄▅▆▇█"


def ms_text(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}ms"


def rate_text(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def percent_text(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def sparkline(values: Sequence[int]) -> str:
    """Requests per step as block characters, scaled to the highest. Pure."""
    top = max(values, default=0)
    if not top:
        return " " * len(values)
    return "".join(_SPARKS[0 if not v else max(1, round(v / top * 8))] for v in values)


def render_top(overview: dict[str, Any], *, width: int, now: float) -> str:
    """One frame of ``bindrop top``: a line per app. Pure."""
    header = ["APP", "STATE", "REQ/S", "ERRORS", "P95", "MEMORY", "CPU"]
    rows = [[a["app"], a["state"], rate_text(a["rate"]),
             f"{a['errors']} ({percent_text(a['error_rate'])})" if a["errors"] else "0",
             ms_text(a["p95"]), format_bytes(a["memory_now"]), percent_text(a["cpu"])]
            for a in overview["apps"]]
    cells = [header, *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    trends = [a["trend"] for a in overview["apps"]]
    room = width - sum(widths) - 2 * len(widths)
    spark = min(min((len(t) for t in trends), default=0), room)
    lines = [time.strftime("bindrop top  %H:%M:%S", time.localtime(now))
             + f"   (last {overview['until'] - overview['since']} s; Ctrl-C quits)", ""]
    for i, row in enumerate(cells):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
        if spark >= 5:
            line += "  " + ("TREND" if i == 0 else sparkline(trends[i - 1][-spark:]))
        lines.append(line.rstrip())
    if not rows:
        lines.append("no apps yet: create one with `bindrop create NAME --host HOST`")
    return "".join(line[:width] + "\n" for line in lines)


@click.command()
@click.argument("app")
@click.option("--since", default="15m", show_default=True, metavar="DURATION",
              help="How far back: 90, 15m, 1h, 7d (7 days are kept).")
@click.option("--step", default=None, metavar="DURATION",
              help="Time per line (default: 10 s within the hour, else about 120 lines).")
@json_option
@remote
def metrics(app: str, since: str, step: str | None, as_json: bool, run: Any) -> None:
    """Print APP's traffic and resources over time: requests, errors, latency, memory, CPU.

    Example: bindrop metrics blog --since 1h --step 5m --json
    """
    series = run(lambda c: c.metrics(app, since=since, step=step))
    if as_json:
        emit_json(series)
        return
    table(["TIME", "REQ", "REQ/S", "5XX", "4XX", "P50", "P95", "MEMORY", "CPU"],
          [[time.strftime("%m-%d %H:%M:%S", time.localtime(p["t"])), p["requests"],
            rate_text(p["requests"] / p["step"]), p["classes"].get("5xx", 0),
            p["classes"].get("4xx", 0), ms_text(p["p50"]), ms_text(p["p95"]),
            format_bytes(p["memory"]), percent_text(p["cpu_seconds"] / p["step"])]
           for p in series["points"]])
    for mark in series["marks"]:
        click.echo(f"{time.strftime('%m-%d %H:%M:%S', time.localtime(mark['t']))}  "
                   f"{mark['kind']}: {mark['message']}")


@click.command()
@click.option("--interval", "-n", type=click.FloatRange(0.5, 3600), default=2.0,
              show_default=True, help="Seconds between refreshes.")
@click.option("--since", default="1m", show_default=True, metavar="DURATION",
              help="The span rates and p95 are over.")
@click.option("--all", "include_system", is_flag=True, help="Show system apps too.")
@click.option("--once", is_flag=True, help="Print one frame and exit (for scripts).")
@json_option
@remote
def top(interval: float, since: str, include_system: bool, once: bool, as_json: bool,
        run: Any) -> None:
    """Watch every app live: state, requests/s, errors, p95 latency, memory and CPU,
    refreshing in place.

    Example: bindrop top --since 5m --all
    """
    async def watch(client: Client) -> None:
        while True:
            overview = await client.metrics_overview(since=since,
                                                     include_system=include_system)
            if as_json:
                emit_json(overview)
                return
            width = shutil.get_terminal_size((100, 24)).columns
            frame = render_top(overview, width=width, now=time.time())
            if once or not sys.stdout.isatty():
                click.echo(frame, nl=False)
                return
            click.echo(_CLEAR + frame, nl=False)
            await asyncio.sleep(interval)

    with contextlib.suppress(KeyboardInterrupt):
        run(watch)
