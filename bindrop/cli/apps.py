"""The app commands: create, update, destroy, apps, status, deploy, releases, rollback, start, stop,
restart, logs. Each parses, calls the client, prints."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bindrop.cli.remote import (
    call,
    emit,
    emit_json,
    json_option,
    remote,
    server_options,
    table,
)
from bindrop.client.client import Client
from bindrop.client.servers import resolve_server
from bindrop.client.ssh import ssh_tty_argv
from bindrop.domain.limits import parse_size
from bindrop.domain.sizes import format_bytes
from bindrop.domain.timespans import TIMEOUT_MAX_S
from bindrop.errors import InvalidInput

Run = Callable[..., Any]
GZIP_MAGIC = b"\x1f\x8b"
#: The most a request body limit can be (SQLite holds it as a signed 64-bit integer).
_BODY_LIMIT_MAX = 2**63 - 1


def _body_limit(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """``--body-limit``: a size such as 10M or 1G, in bytes."""
    if value is None:
        return None
    try:
        return parse_size(value, "body limit", _BODY_LIMIT_MAX)
    except InvalidInput as exc:
        raise click.BadParameter(exc.message) from None


def _seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A number of seconds the hub takes: finite, 0.001 to a day."""
    if value is not None and not 0.001 <= value <= TIMEOUT_MAX_S:  # false for nan too
        raise click.BadParameter(f"use a number of seconds from 0.001 to {TIMEOUT_MAX_S:g}, "
                                 f"not {value!r}")
    return value


body_limit_option = click.option(
    "--body-limit", metavar="SIZE", callback=_body_limit,
    help="The largest request body the proxy passes to the app, e.g. 10M (default 100M); "
         "larger ones get 413.")
liveness_option = click.option(
    "--liveness", type=click.FloatRange(min=0.1), metavar="SECONDS",
    help="Keep checking the app (its health check) every SECONDS once it is up; 3 failures "
         "in a row restart it.")
idle_timeout_option = click.option(
    "--idle-timeout", type=float, callback=_seconds, metavar="SECONDS",
    help="With --on-demand: stop the app after SECONDS without a request (default 900).")
health_timeout_option = click.option(
    "--health-timeout", type=float, callback=_seconds, metavar="SECONDS",
    help="How long a new release may take to pass its health check (default 30).")


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
@liveness_option
@click.option("--https-redirect", is_flag=True,
              help="Answer plain-HTTP requests with a 308 to the same https:// URL.")
@click.option("--no-tls", is_flag=True,
              help="No certificate for the app's hosts (automatic HTTPS leaves them alone).")
@click.option("--allow-http", is_flag=True,
              help="Keep answering plain HTTP once a certificate is valid (no 308).")
@click.option("--hsts", is_flag=True,
              help="HTTPS answers carry Strict-Transport-Security (browsers then refuse "
                   "plain HTTP for a year).")
@body_limit_option
@idle_timeout_option
@health_timeout_option
@json_option
@remote
def create(app: str, hosts: tuple[str, ...], health: str | None, memory: str | None,
           cpu: str | None, tasks: int | None, on_demand: bool, no_overlap: bool,
           liveness: float | None, https_redirect: bool, no_tls: bool, allow_http: bool,
           hsts: bool, body_limit: int | None, idle_timeout: float | None,
           health_timeout: float | None, as_json: bool, run: Run) -> None:
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
                       ("tasks_max", tasks), ("liveness_interval_s", liveness),
                       ("body_limit", body_limit), ("idle_timeout_s", idle_timeout),
                       ("health_timeout_s", health_timeout)):
        if value is not None:
            settings[key] = value
    created = run(lambda c: c.create_app(settings))
    emit(created, as_json,
         lambda created: f"created {app} ({', '.join(created['hosts'])}); deploy it with "
                         f"`bindrop deploy {app} ./binary`")
    _note_inert_settings(app, created)


#: What ``update`` can change, as (API field, the name people see); ``no_tls`` shows as
#: ``tls``, the other way round.
_UPDATE_LABELS = (("hosts", "hosts"), ("health_path", "health"), ("on_demand", "on-demand"),
                  ("no_overlap", "no-overlap"), ("liveness_interval_s", "liveness"),
                  ("https_redirect", "https-redirect"), ("no_tls", "tls"),
                  ("allow_http", "allow-http"), ("hsts", "hsts"),
                  ("body_limit", "body-limit"), ("idle_timeout_s", "idle-timeout"),
                  ("health_timeout_s", "health-timeout"),
                  ("maintenance_message", "maintenance message"))
_UPDATE_OPTIONS = ("--host, --health/--no-health, --on-demand/--no-on-demand, "
                   "--no-overlap/--overlap, --liveness/--no-liveness, "
                   "--https-redirect/--no-https-redirect, --tls/--no-tls, "
                   "--allow-http/--no-allow-http, --hsts/--no-hsts, --body-limit, "
                   "--idle-timeout, --health-timeout, --maintenance/--no-maintenance")


def _setting_text(key: str, value: Any) -> str:
    if key == "no_tls":
        value = not value
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if isinstance(value, list):
        return ", ".join(value) or "none"
    if key == "liveness_interval_s":
        return f"every {value:g}s"
    if key in ("idle_timeout_s", "health_timeout_s"):
        return f"{value:g}s"
    if key == "body_limit":
        return format_bytes(value, "exact")
    if key == "maintenance_message":
        return json.dumps(value)  # quoted, every control or invisible character escaped
    return str(value)


def _note_inert_settings(app: str, config: dict[str, Any]) -> None:
    """Say so (on stderr) when a setting the app now has does nothing with another one."""
    if config.get("hsts") and config.get("no_tls"):
        click.echo(f"note: hsts has no effect on {app} while tls is off (it is sent only for "
                   "names bindrop gets certificates for)", err=True)


def _changed_line(app: str, before: dict[str, Any], after: dict[str, Any],
                  asked: dict[str, Any]) -> str:
    changed = [f"{label} {_setting_text(key, before[key])} -> {_setting_text(key, after[key])}"
               for key, label in _UPDATE_LABELS if key in asked and before[key] != after[key]]
    if not changed:
        return f"{app} unchanged (already so)"
    return f"updated {app}: {'; '.join(changed)}"


@click.command()
@click.argument("app")
@click.option("--host", "hosts", multiple=True, metavar="HOST",
              help="Replace the app's hosts with these (a hostname, optionally with a path "
                   "prefix); repeat for more.")
@click.option("--health", metavar="PATH",
              help="HTTP path that answers 2xx when the app is ready.")
@click.option("--no-health", is_flag=True,
              help="No health path: the app is ready once $PORT takes a TCP connect.")
@click.option("--on-demand/--no-on-demand", default=None,
              help="Start on the first request and stop when idle (or run all the time).")
@click.option("--no-overlap/--overlap", default=None,
              help="Never run two releases at once (or start the new before stopping the "
                   "old).")
@liveness_option
@click.option("--no-liveness", is_flag=True, help="Stop checking the app once it is up.")
@click.option("--https-redirect/--no-https-redirect", default=None,
              help="Answer plain-HTTP requests with a 308 to the same https:// URL (or not).")
@click.option("--tls/--no-tls", default=None,
              help="Get certificates for the app's hosts (--no-tls: automatic HTTPS leaves "
                   "them alone).")
@click.option("--allow-http/--no-allow-http", default=None,
              help="Keep answering plain HTTP once a certificate is valid (or send a 308).")
@click.option("--hsts/--no-hsts", default=None,
              help="HTTPS answers carry Strict-Transport-Security (or stop sending it).")
@body_limit_option
@idle_timeout_option
@health_timeout_option
@click.option("--maintenance", metavar="TEXT",
              help="What visitors read (on a 503 page) while the app is stopped or not "
                   "serving, e.g. \"Back at noon\".")
@click.option("--no-maintenance", is_flag=True,
              help="Back to the default page while the app is not serving.")
@json_option
@remote
def update(app: str, hosts: tuple[str, ...], health: str | None, no_health: bool,
           on_demand: bool | None, no_overlap: bool | None, liveness: float | None,
           no_liveness: bool, https_redirect: bool | None, tls: bool | None,
           allow_http: bool | None, hsts: bool | None, body_limit: int | None,
           idle_timeout: float | None, health_timeout: float | None,
           maintenance: str | None, no_maintenance: bool, as_json: bool, run: Run) -> None:
    """Change APP's hosts, health check, HTTPS and proxy settings; only the options given
    change.

    Limits (memory, CPU, tasks) change with `bindrop limits`, environment with `bindrop env`.

    Example: bindrop update blog --host blog.example.com --hsts
    """
    if health is not None and no_health:
        raise click.UsageError("give --health PATH or --no-health, not both")
    if liveness is not None and no_liveness:
        raise click.UsageError("give --liveness SECONDS or --no-liveness, not both")
    if maintenance is not None and no_maintenance:
        raise click.UsageError("give --maintenance TEXT or --no-maintenance, not both")
    changes: dict[str, Any] = {}
    if hosts:
        changes["hosts"] = list(hosts)
    if health is not None or no_health:
        changes["health_path"] = health
    if liveness is not None or no_liveness:
        changes["liveness_interval_s"] = liveness
    if maintenance is not None or no_maintenance:
        changes["maintenance_message"] = maintenance
    for key, value in (("on_demand", on_demand), ("no_overlap", no_overlap),
                       ("body_limit", body_limit), ("idle_timeout_s", idle_timeout),
                       ("health_timeout_s", health_timeout),
                       ("https_redirect", https_redirect),
                       ("no_tls", None if tls is None else not tls),
                       ("allow_http", allow_http), ("hsts", hsts)):
        if value is not None:
            changes[key] = value
    if not changes:
        raise click.UsageError(f"nothing to change; give one or more of: {_UPDATE_OPTIONS}")

    async def change(client: Client) -> tuple[Any, Any]:
        before = await client.app(app)
        return before, await client.update_app(app, changes)

    before, after = run(change)
    emit(after, as_json, lambda answer: _changed_line(app, before, answer, changes))
    _note_inert_settings(app, after)


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
    emit(run(lambda c: c.destroy_app(app, purge_data=purge_data)), as_json,
         lambda gone: f"destroyed {app}: {len(gone['stopped'])} units stopped, "
                      f"{'data deleted' if gone['data_purged'] else 'data kept'}")


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
        ("memory", format_bytes(metrics.get("memory_current"))),
        ("url", shown["url"] or "-"),
        ("hosts", ", ".join(config["hosts"])),
        ("limits", f"memory {format_bytes(config['memory_max'])}, cpu "
                   f"{str(config['cpu_quota']) + '%' if config['cpu_quota'] else '-'}, "
                   f"tasks {config['tasks_max'] or '-'}"),
    ]
    for key, value in rows:
        click.echo(f"{key + ':':<10} {value}")
    instances = live.get("instances") or []
    if len(instances) > 1 or any(i["process"] != "web" for i in instances):
        click.echo("")
        table(["PROCESS", "UNIT", "PORT", "SERVING"],
              [[i["process"], i["unit"], i["port"] or "-", "yes" if i["serving"] else "-"]
               for i in instances])
    for gave_up in live.get("gave_up") or []:
        click.echo(f"gave up:   {gave_up['unit']} ({gave_up['problem']})")


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
        ("disk", f"{format_bytes(disk['used'])} of {format_bytes(disk['total'])} used "
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
@click.option("--process", multiple=True, metavar="NAME=ARGS",
              help="A process type besides web: for a program, its arguments to the same "
                   "program (worker=\"--worker\"); for a bundle, a command (adds to or "
                   "replaces a Procfile line). Repeat for more.")
@click.option("--rolling", is_flag=True,
              help="Replace instances one at a time (start, ready, swap, drain, stop the "
                   "old one) instead of starting a whole new set first; a failure midway "
                   "puts the old release back on the instances already replaced.")
@click.option("--release-cmd", metavar="ARGS",
              help="Run this once before the new release starts (migrations); a failure "
                   "stops the deploy. For a program: its arguments.")
@json_option
@remote
def deploy(app: str, path: Path, cmd: str | None, no_wait: bool, process: tuple[str, ...],
           rolling: bool, release_cmd: str | None, as_json: bool, run: Run) -> None:
    """Upload PATH as a new release of APP and put it live with no downtime.

    PATH is an executable (ELF, or a script with #!) or a .tar.gz bundle with a Procfile at
    its root (web: ./server, worker: ./worker, release: ./migrate) or --cmd.

    Example: bindrop deploy blog ./target/release/blog --process worker="--worker"
    """
    with open(path, "rb") as f:
        bundle = f.read(2) == GZIP_MAGIC
    command = shlex.split(cmd) if cmd else []
    processes: dict[str, list[str]] = {}
    for item in process:
        name, eq, args = item.partition("=")
        if not eq or not name:
            raise click.BadParameter(f"{item!r} is not NAME=ARGS, e.g. worker=\"--worker\"",
                                     param_hint="--process")
        processes[name] = shlex.split(args)
    release_command = shlex.split(release_cmd) if release_cmd is not None else None

    async def upload_and_deploy(client: Client) -> tuple[Any, Any]:
        with click.progressbar(length=path.stat().st_size, label=f"uploading {path.name}",
                               file=sys.stderr) as bar:
            release = await client.upload_release(app, path, command=command, bundle=bundle,
                                                  progress=bar.update, processes=processes,
                                                  release_command=release_command)
        outcome = await client.deploy(app, int(release["number"]), wait=not no_wait,
                                      rolling=rolling)
        return release, outcome

    release, outcome = run(upload_and_deploy)
    if as_json:
        emit_json({"release": release, "outcome": outcome})
    else:
        for line in outcome.get("release_log") or []:
            click.echo(f"release command: {line}")
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
          [[r["number"], r["status"], format_bytes(r["size"]), r["created_at"][:19],
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
    emit(run(lambda c: c.action(app, "rollback", body, wait=not no_wait)), as_json,
         _outcome_line)


def _action(verb: str, doc: str) -> click.Command:
    @click.command(name=verb, help=doc)
    @click.argument("app")
    @click.option("--no-wait", is_flag=True, help="Return at once with a job id.")
    @json_option
    @remote
    def command(app: str, no_wait: bool, as_json: bool, run: Run) -> None:
        emit(run(lambda c: c.action(app, verb, wait=not no_wait)), as_json, _outcome_line)

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
@click.option("--process", "-p", metavar="NAME",
              help="Only this process type's output (web, worker, release, run).")
@json_option
@remote
def logs(app: str, follow: bool, lines: int, process: str | None, as_json: bool,
         run: Run) -> None:
    """Print APP's output (every release and process), optionally following it.

    Example: bindrop logs blog -f -n 100 --process worker
    """
    async def read(client: Client) -> None:
        async for entry in client.logs(app, lines=lines, follow=follow, process=process):
            if as_json:
                click.echo(json.dumps(entry, ensure_ascii=False))
            else:
                click.echo(entry["message"])

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a follow quietly
        run(read)


@click.command()
@click.argument("app")
@click.argument("counts", nargs=-1, metavar="PROCESS=COUNT...")
@click.option("--memory", "memory", multiple=True, metavar="PROCESS=SIZE",
              help="A process type's own memory limit (256M; 'none' for the app's).")
@click.option("--health", "health", multiple=True, metavar="PROCESS=PATH",
              help="A process type's own health check path ('none' for the app's).")
@json_option
@remote
def scale(app: str, counts: tuple[str, ...], memory: tuple[str, ...], health: tuple[str, ...],
          as_json: bool, run: Run) -> None:
    """Set how many instances of each process type of APP run; without COUNTS, show them.

    New instances start (and get ready) before surplus ones drain and stop; web=0 leaves
    the app's hosts answering 503.

    Example: bindrop scale blog web=3 worker=1
    """
    from bindrop.domain.processes import parse_scale_args
    from bindrop.errors import InvalidInput

    if not counts and not memory and not health:
        shown = run(lambda c: c.processes(app))
        if as_json:
            emit_json(shown)
            return
        table(["PROCESS", "COUNT", "MEMORY", "HEALTH", "COMMAND"],
              [[p["name"], p["count"], format_bytes(p["memory_max"]), p["health_path"] or "-",
                shlex.join(p["command"]) or "-"] for p in shown["processes"]])
        if shown["release_command"]:
            click.echo(f"release command: {shlex.join(shown['release_command'])}")
        return
    try:
        wanted = parse_scale_args(list(counts))
    except InvalidInput as exc:
        raise click.BadParameter(exc.message, param_hint="PROCESS=COUNT") from None
    mem = _pairs(memory, "--memory")
    hp = _pairs(health, "--health")
    emit(run(lambda c: c.scale(app, {k: int(str(v)) for k, v in wanted.items()},
                               memory_max=mem, health_path=hp)), as_json, _outcome_line)


def _pairs(items: tuple[str, ...], option: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name or not value:
            raise click.BadParameter(f"{item!r} is not PROCESS=VALUE", param_hint=option)
        out[name] = None if value.lower() == "none" else value
    return out


@click.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("app")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--detach", "-d", is_flag=True,
              help="Leave it running and print its unit's name (its output is in "
                   "`bindrop logs APP --process run`).")
@click.option("--tty", "-t", is_flag=True,
              help="Interactive, on a terminal (stdin too): over ssh://, or on the server "
                   "itself (runs systemd-run --pty).")
@json_option
@server_options
def run_command(app: str, command: tuple[str, ...], detach: bool, tty: bool, as_json: bool,
                server: str | None, token: str | None) -> None:
    """Run COMMAND once with APP's current release: its env, user, data dir and sandbox.

    Prints the command's output as it comes and exits with its exit status.

    Example: bindrop run blog -- sh -c 'echo $DATABASE_URL'
    """
    args = list(command)

    def run(action: Callable[[Client], Any]) -> Any:
        return call(server, token, action)

    if tty:
        _run_on_a_terminal(app, args, server, token)
        return
    if detach:
        emit(run(lambda c: c.run_detached(app, args)), as_json,
             lambda started: started["unit"])
        return

    async def follow(client: Client) -> int:
        status = 1
        async for item in client.run(app, args):
            if as_json:
                click.echo(json.dumps(item, ensure_ascii=False))
            elif "message" in item:
                click.echo(item["message"])
            elif "unit" in item:
                click.echo(f"running as {item['unit']}", err=True)
            if "exit_status" in item:
                status = int(item["exit_status"])
        return status

    sys.exit(run(follow))


def _run_on_a_terminal(app: str, args: list[str], server: str | None,
                       token: str | None) -> None:
    """Replace this process: over ssh:// by ``ssh -t`` running ``bindrop run --tty`` on the
    server; on the server by ``systemd-run --pty`` with the unit the hub planned."""
    endpoint, _ = resolve_server(server, token, os.environ)
    if endpoint.transport == "ssh":
        ssh = shlex.split(os.environ.get("BINDROP_SSH") or "ssh")
        remote_cmd = shlex.split(os.environ.get("BINDROP_REMOTE_COMMAND") or "bindrop")
        argv = ssh_tty_argv(endpoint, app, args, ssh=ssh, remote=remote_cmd)
        os.execvp(argv[0], argv)
    if endpoint.transport != "unix":
        raise click.UsageError("--tty needs the server itself (unix:) or ssh://: an HTTP "
                               "API cannot carry a terminal")
    plan = call(server, token, lambda c: c.run_plan(app, args))
    # "prefix" runs systemd's tools where the hub's systemd is (nsenter into a bindrop
    # machine); empty on a server. Only the server's own root reaches the unix socket.
    argv = [*plan.get("prefix", []), "systemd-run", "--pty", "--quiet", "--wait", "--collect",
            "--service-type=exec", f"--unit={plan['unit']}",
            *(f"--property={p}" for p in plan["properties"]), "--", *plan["argv"]]
    os.execvp(argv[0], argv)
