"""The app commands: create, destroy, apps, status, deploy, releases, rollback, start, stop,
restart, logs. Each parses, calls the client, prints."""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bindrop.cli.remote import emit_json, json_option, remote, size_text, table
from bindrop.client.client import Client

Run = Callable[..., Any]
GZIP_MAGIC = b"\x1f\x8b"


def _outcome_line(outcome: dict[str, Any]) -> str:
    if "job" in outcome:
        return f"started job {outcome['job']}"
    return str(outcome.get("message") or outcome.get("action"))


@click.command()
@click.argument("app")
@click.option("--host", "hosts", multiple=True, required=True, metavar="HOST",
              help="A hostname (optionally with a path prefix) the app answers on; repeat "
                   "for more.")
@click.option("--health", metavar="PATH", help="HTTP path that answers 2xx when the app is "
                                                "ready (default: a TCP connect to $PORT).")
@click.option("--memory", metavar="SIZE", help="Memory limit, e.g. 256M.")
@click.option("--cpu", metavar="QUOTA", help="CPU quota, e.g. 50% or 2 (CPUs).")
@click.option("--tasks", type=int, metavar="N", help="Most processes + threads.")
@click.option("--on-demand", is_flag=True, help="Start on the first request, stop when idle.")
@click.option("--no-overlap", is_flag=True,
              help="Never run two releases at once (stop the old before starting the new).")
@click.option("--liveness", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Keep checking the app (its health check) every SECONDS once it is up; "
                   "3 failures in a row restart it.")
@click.option("--https-redirect", is_flag=True,
              help="Answer plain-HTTP requests with a 308 to the same https:// URL.")
@click.option("--no-tls", is_flag=True,
              help="No certificate for the app's hosts (automatic HTTPS leaves them alone).")
@click.option("--allow-http", is_flag=True,
              help="Keep answering plain HTTP once a certificate is valid (no 308).")
@click.option("--hsts", is_flag=True,
              help="HTTPS answers carry Strict-Transport-Security (browsers then refuse "
                   "plain HTTP for a year).")
@json_option
@remote
def create(app: str, hosts: tuple[str, ...], health: str | None, memory: str | None,
           cpu: str | None, tasks: int | None, on_demand: bool, no_overlap: bool,
           liveness: float | None, https_redirect: bool, no_tls: bool, allow_http: bool,
           hsts: bool, as_json: bool, run: Run) -> None:
    """Create APP; it runs once you deploy a release to it.

    Example: bindrop create blog --host blog.example.com --memory 256M
    """
    settings: dict[str, Any] = {"name": app, "hosts": list(hosts), "on_demand": on_demand,
                                "no_overlap": no_overlap}
    for key, flag in (("https_redirect", https_redirect), ("no_tls", no_tls),
                      ("allow_http", allow_http), ("hsts", hsts)):
        if flag:
            settings[key] = True
    for key, value in (("health_path", health), ("memory_max", memory), ("cpu_quota", cpu),
                       ("tasks_max", tasks), ("liveness_interval_s", liveness)):
        if value is not None:
            settings[key] = value
    created = run(lambda c: c.create_app(settings))
    if as_json:
        emit_json(created)
    else:
        click.echo(f"created {app} ({', '.join(created['hosts'])}); deploy it with "
                   f"`bindrop deploy {app} ./binary`")


@click.command()
@click.argument("app")
@click.option("--purge-data", is_flag=True, help="Also delete the app's data directory.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@remote
def destroy(app: str, purge_data: bool, yes: bool, as_json: bool, run: Run) -> None:
    """Stop APP and delete its config and releases (its data stays unless --purge-data).

    Example: bindrop destroy blog --yes
    """
    if not yes:
        what = "and its DATA " if purge_data else ""
        click.confirm(f"destroy {app} {what}for good?", abort=True, err=True)
    gone = run(lambda c: c.destroy_app(app, purge_data=purge_data))
    if as_json:
        emit_json(gone)
    else:
        data = "data deleted" if gone["data_purged"] else "data kept"
        click.echo(f"destroyed {app}: {len(gone['stopped'])} units stopped, {data}")


@click.command(name="apps")
@click.option("--all", "-a", "show_all", is_flag=True,
              help="Include bindrop's own apps (the dashboard).")
@json_option
@remote
def list_apps(show_all: bool, as_json: bool, run: Run) -> None:
    """List apps with their state and live release.

    Example: bindrop apps --all --json
    """
    apps = run(lambda c: c.apps(include_system=show_all))
    if as_json:
        emit_json(apps)
        return
    if not apps:
        click.echo("no apps yet; create one with `bindrop create APP --host HOST`")
        return
    table(["APP", "STATE", "RELEASE", "HOSTS"],
          [[a["name"] + (" (system)" if a.get("system") else ""), a["live"]["state"],
            a["live"]["release"], ", ".join(a["hosts"])]
           for a in apps])


@click.command()
@click.argument("app", required=False)
@json_option
@remote
def status(app: str | None, as_json: bool, run: Run) -> None:
    """Show APP's config and live state: release, state, PID, restarts, memory, uptime, URL.

    Without APP: the server's apps, disk, and its last backup, backup failure and disk check.

    Example: bindrop status blog
    """
    if app is None:
        _server_status(run(lambda c: c.server()), as_json)
        return
    shown = run(lambda c: c.status(app))
    if as_json:
        emit_json(shown)
        return
    config, live, metrics = shown["app"], shown["live"], shown["metrics"] or {}
    rows = [
        ("state", live["state"] + (f" ({live['problem']})" if live["problem"] else "")),
        ("release", live["release"] or "-"),
        ("unit", live["unit"] or "-"),
        ("pid", live["main_pid"] or "-"),
        ("restarts", live["n_restarts"]),
        ("since", live["active_since"] or "-"),
        ("memory", size_text(metrics.get("memory_current"))),
        ("url", shown["url"] or "-"),
        ("hosts", ", ".join(config["hosts"])),
        ("limits", f"memory {size_text(config['memory_max'])}, cpu "
                   f"{str(config['cpu_quota']) + '%' if config['cpu_quota'] else '-'}, "
                   f"tasks {config['tasks_max'] or '-'}"),
    ]
    for key, value in rows:
        click.echo(f"{key + ':':<10} {value}")


def _server_status(info: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(info)
        return
    disk = info["disk"]
    care = info.get("care") or {}

    def event(key: str) -> str:
        found = care.get(key)
        return f"{found['at']}  {found['message']}" if found else "-"

    rows = [
        ("apps", info["apps"]),
        ("disk", f"{size_text(disk['used'])} of {size_text(disk['total'])} used "
                 f"({100 * disk['used'] / max(disk['total'], 1):.0f} %)"),
        ("backup", event("last_backup")),
        ("failure", event("last_backup_failure")),
        ("restore", event("last_restore")),
        ("disk check", event("disk")),
    ]
    tls = info.get("tls")
    if tls:
        states = ", ".join(f"{n} {s}" for s, n in sorted(tls["states"].items())) or "no names"
        rows.append(("https", f"{'on' if tls['enabled'] else 'off'}: {states}"))
        for key, found in (("tls", tls["last_event"]), ("tls failed", tls["last_failure"])):
            if found and (key == "tls" or found != tls["last_event"]):
                rows.append((key, f"{found['at']}  {found['message']}"))
    for key, value in rows:
        click.echo(f"{key + ':':<11} {value}")


@click.command()
@click.argument("app")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--cmd", metavar="ARGS",
              help="For a .tar.gz bundle: the program to run inside it and its arguments; "
                   "for a program: its arguments.")
@click.option("--no-wait", is_flag=True, help="Return once the upload is done and the deploy "
                                              "has started (prints a job id).")
@json_option
@remote
def deploy(app: str, path: Path, cmd: str | None, no_wait: bool, as_json: bool,
           run: Run) -> None:
    """Upload PATH as a new release of APP and put it live with no downtime.

    PATH is an executable (ELF, or a script with #!) or a .tar.gz bundle with --cmd.

    Example: bindrop deploy blog ./target/release/blog
    """
    with open(path, "rb") as f:
        bundle = f.read(2) == GZIP_MAGIC
    command = shlex.split(cmd) if cmd else []

    async def upload_and_deploy(client: Client) -> tuple[Any, Any]:
        with click.progressbar(length=path.stat().st_size, label=f"uploading {path.name}",
                               file=sys.stderr) as bar:
            release = await client.upload_release(app, path, command=command, bundle=bundle,
                                                  progress=bar.update)
        outcome = await client.deploy(app, int(release["number"]), wait=not no_wait)
        return release, outcome

    release, outcome = run(upload_and_deploy)
    if as_json:
        emit_json({"release": release, "outcome": outcome})
    else:
        click.echo(_outcome_line(outcome))


@click.command()
@click.argument("app")
@json_option
@remote
def releases(app: str, as_json: bool, run: Run) -> None:
    """List APP's releases, newest first.

    Example: bindrop releases blog
    """
    found = run(lambda c: c.releases(app))
    if as_json:
        emit_json(found)
        return
    table(["RELEASE", "STATUS", "SIZE", "CREATED", "BY", "COMMAND"],
          [[r["number"], r["status"], size_text(r["size"]), r["created_at"][:19],
            r["created_by"], shlex.join(r["command"])] for r in found])


@click.command()
@click.argument("app")
@click.option("--to", type=int, metavar="RELEASE", help="Which release (default: the one "
                                                        "before the current).")
@click.option("--no-wait", is_flag=True, help="Return at once with a job id.")
@json_option
@remote
def rollback(app: str, to: int | None, no_wait: bool, as_json: bool, run: Run) -> None:
    """Put an earlier release of APP live again, with no downtime.

    Example: bindrop rollback blog --to 3
    """
    body = {"to": to} if to is not None else {}
    outcome = run(lambda c: c.action(app, "rollback", body, wait=not no_wait))
    if as_json:
        emit_json(outcome)
    else:
        click.echo(_outcome_line(outcome))


def _action(verb: str, doc: str) -> click.Command:
    @click.command(name=verb, help=doc)
    @click.argument("app")
    @click.option("--no-wait", is_flag=True, help="Return at once with a job id.")
    @json_option
    @remote
    def command(app: str, no_wait: bool, as_json: bool, run: Run) -> None:
        outcome = run(lambda c: c.action(app, verb, wait=not no_wait))
        if as_json:
            emit_json(outcome)
        else:
            click.echo(_outcome_line(outcome))

    return command


start = _action("start", "Start APP's current release.\n\nExample: bindrop start blog")
stop = _action("stop", "Stop every unit of APP (it stays stopped after a reboot).\n\n"
                       "Example: bindrop stop blog")
restart = _action("restart", "Restart APP with no downtime (a fresh unit of the same "
                             "release).\n\nExample: bindrop restart blog")


@click.command()
@click.argument("app")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines.")
@click.option("--lines", "-n", type=click.IntRange(0, 10_000), default=50, show_default=True,
              help="How many past lines.")
@json_option
@remote
def logs(app: str, follow: bool, lines: int, as_json: bool, run: Run) -> None:
    """Print APP's output (every release), optionally following it.

    Example: bindrop logs blog -f -n 100
    """
    async def read(client: Client) -> None:
        async for entry in client.logs(app, lines=lines, follow=follow):
            if as_json:
                click.echo(json.dumps(entry, ensure_ascii=False))
            else:
                click.echo(entry["message"])

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a follow quietly
        run(read)
