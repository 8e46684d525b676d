"""``bindrop disk``, ``bindrop disk check`` and ``bindrop gc``: watch the disk, free space."""

from __future__ import annotations

import click

from bindrop.care.config import parse_threshold
from bindrop.care.disk import (
    last_sample,
    measure,
    over_threshold,
    post_webhook,
    record_sample,
    webhook_payload,
)
from bindrop.care.gc import collect
from bindrop.cli.care_common import care_context, care_options
from bindrop.cli.remote import emit_json, json_option, size_text, table
from bindrop.errors import BindropError


@click.group(invoke_without_command=True)
@json_option
@care_options
@click.pass_context
def disk(ctx: click.Context, as_json: bool, server: str | None, token: str | None) -> None:
    """Show the filesystems holding bindrop's data and what bindrop's parts use: blobs, the
    database, each app's data, backups, the journal.

    Example: bindrop disk --json
    """
    if ctx.invoked_subcommand is not None:
        return
    care = care_context(server, token)
    report = measure(care.settings, care.care)
    if as_json:
        emit_json(report.to_dict())
        return
    table(["FILESYSTEM", "SIZE", "USED", "FREE", "USE%", "HOLDS"],
          [[f.mount, size_text(f.total), size_text(f.used), size_text(f.free),
            f"{f.percent:.0f}%", ", ".join(f.holds)] for f in report.filesystems])
    click.echo()
    table(["PART", "SIZE"],
          [*([name, size_text(size)] for name, size in report.parts.items() if name != "apps"),
           *([f"app {name}", size_text(size)] for name, size in report.apps.items())])


@disk.command("check")
@click.option("--threshold", metavar="PERCENT", envvar="BINDROP_DISK_THRESHOLD",
              help="Alert at this usage (default 85, or BINDROP_DISK_THRESHOLD in "
                   "/etc/bindrop/care.env). [env: BINDROP_DISK_THRESHOLD]")
@json_option
@care_options
def check(threshold: str | None, as_json: bool, server: str | None, token: str | None) -> None:
    """Record a usage sample; over the threshold, record an event and POST the webhook
    (BINDROP_DISK_WEBHOOK) if one is set. What bindrop-disk.timer runs every 15 minutes.

    Example: bindrop disk check --threshold 90
    """
    care = care_context(server, token)
    limit = parse_threshold(threshold) if threshold else care.care.disk_threshold
    report = measure(care.settings, care.care, parts=False)
    previous = last_sample(care.settings)
    record_sample(care.settings, report, limit)
    over = over_threshold(report, limit)
    notified = False
    if not over and previous is not None and previous.get("over"):
        care.record("disk_back_under", f"disk usage is under {limit:g} % again",
                    data={"threshold": limit})
    if over:
        worst = max(over, key=lambda f: f.percent)
        care.record("disk_over_threshold",
                    f"{worst.mount} is {worst.percent:.0f} % full (threshold {limit:g} %); "
                    "`bindrop gc` frees old blobs and backups",
                    data={"threshold": limit, "filesystems": [f.to_dict() for f in over]})
        if care.care.webhook_url:
            try:
                post_webhook(care.care.webhook_url, webhook_payload(report, over, limit))
                notified = True
            except BindropError as exc:
                care.record("disk_webhook_failed", exc.message)
                click.echo(f"warning: {exc.message}", err=True)
    result = {"at": report.at, "threshold": limit, "over": [f.mount for f in over],
              "webhook": notified, "filesystems": [f.to_dict() for f in report.filesystems]}
    if as_json:
        emit_json(result)
        return
    for f in report.filesystems:
        mark = "  OVER THRESHOLD" if f in over else ""
        click.echo(f"{f.mount}: {f.percent:.0f}% used ({size_text(f.free)} free){mark}")


@click.command()
@json_option
@care_options
def gc(as_json: bool, server: str | None, token: str | None) -> None:
    """Free what bindrop can: blobs no release uses (older than an hour), backups beyond
    retention, leftovers of failed backups; says how much.

    Example: bindrop gc
    """
    care = care_context(server, token)
    freed = collect(care.settings, care.care)
    message = (f"gc freed {size_text(freed.total)}: {freed.blobs} blobs, "
               f"{len(freed.backups)} backups")
    care.record("gc_finished", message, data=freed.to_dict())
    if as_json:
        emit_json(freed.to_dict())
    else:
        click.echo(message)
