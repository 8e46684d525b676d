"""``bindrop server export|import|setup`` and ``bindrop migrate``: moving a whole server.

Thin: the work is in ``bindrop.moving`` (export and import run on the server itself and read
its files; with ``--server ssh://…`` this command runs them there over SSH).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from bindrop.cli.remote import call, emit_json, json_option, server_options
from bindrop.client.servers import SavedServer, load_servers, resolve_server, save_server
from bindrop.domain.sizes import format_bytes
from bindrop.errors import BindropError, InvalidInput

_ssh_server = click.option(
    "--server", "-s", metavar="ssh://USER@HOST",
    help="Run it on that server over SSH instead of on this one. [env: BINDROP_SSH, the ssh "
         "command; BINDROP_REMOTE_COMMAND, how the server runs bindrop]")


def _remote(url: str, what: str = "server") -> Any:
    from bindrop.moving.remote import Remote

    ssh = shlex.split(os.environ.get("BINDROP_SSH") or "ssh")
    bindrop = shlex.split(os.environ.get("BINDROP_REMOTE_COMMAND") or "bindrop")
    endpoint, _token = resolve_server(url, None, os.environ)
    return Remote.of(endpoint.url, ssh, bindrop, what=what)


def _settings() -> Any:
    from bindrop.settings import Settings

    if os.geteuid() != 0:
        raise InvalidInput("run this as root on the server (it reads and writes bindrop's "
                           "files), or give --server ssh://root@host")
    return Settings.from_env(os.environ)


def _bucket(settings: Any) -> Any:
    from bindrop.care.config import load_care_settings
    from bindrop.moving.bucket import BlobBucket

    s3 = load_care_settings(settings, os.environ).s3
    if s3 is None:
        raise InvalidInput("--blobs-in-bucket needs a bucket: set BINDROP_S3_BUCKET (and its "
                           "keys) in /etc/bindrop/care.env, as for backups")
    return BlobBucket(s3)


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


@contextlib.contextmanager
def _output(file: str) -> Iterator[IO[bytes]]:
    """stdout for "-"; else FILE.part, renamed to FILE only when the export completed."""
    if file == "-":
        if sys.stdout.isatty():
            raise InvalidInput("the bundle is binary: redirect stdout (`> server.tar`, or "
                               "`| ssh root@new bindrop server import -`), or give a FILE")
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(file)
    part = target.with_name(target.name + ".part")
    try:
        with part.open("wb") as out:
            yield out
        part.replace(target)
    finally:
        part.unlink(missing_ok=True)


_blobs_in_bucket = click.option(
    "--blobs-in-bucket", is_flag=True,
    help="Put release blobs in the S3 bucket of the backups (BINDROP_S3_* in "
         "/etc/bindrop/care.env) instead of the bundle; the import fetches them from there.")


@click.command(name="export")
@click.argument("file")
@_blobs_in_bucket
@_ssh_server
@json_option
def export_cmd(file: str, blobs_in_bucket: bool, server: str | None, as_json: bool) -> None:
    """Write this server's whole state into one bundle FILE ("-": stdout).

    A tar stream: a snapshot of bindrop's database (SQLite's online backup API), the blobs of
    every kept release, each app's data (its SQLite databases as snapshots), /etc/bindrop
    (settings, certificates), and a manifest of sha256 sums, last. Streamed: nothing but one
    database snapshot at a time is copied on disk. Apps keep running.

    Example: bindrop server export /var/backups/bindrop/server.tar
    """
    if server:
        with _output(file) as out:
            flags = ["--blobs-in-bucket"] if blobs_in_bucket else []
            proc = subprocess.run(_remote(server).bindrop_argv("server", "export", "-", *flags),
                                  stdin=subprocess.DEVNULL, stdout=out, check=False)
            if proc.returncode != 0:
                raise BindropError(f"the export on {server} failed (exit {proc.returncode})")
        return
    from bindrop.moving.export import export_bundle

    settings = _settings()
    bucket = _bucket(settings) if blobs_in_bucket else None
    with _output(file) as out:
        manifest = export_bundle(settings, out, warn=_warn, bucket=bucket)
    size = sum(f.size for f in manifest.files)
    if as_json and file != "-":
        emit_json({"file": file, "files": len(manifest.files), "bytes": size,
                   "apps": [a.name for a in manifest.apps]})
    else:
        click.echo(f"exported {len(manifest.apps)} apps, {len(manifest.files)} files "
                   f"({format_bytes(size)})" + (f" to {file}" if file != "-" else ""), err=True)


@click.command(name="import")
@click.argument("file")
@click.option("--replace", is_flag=True,
              help="Import even though this server has apps (theirs are overwritten).")
@click.option("--keep-install-options", is_flag=True,
              help="Keep this server's install options (ports, hosts, backup schedule) "
                   "rather than take the bundle's; the report says how they differ.")
@_ssh_server
@json_option
def import_cmd(file: str, replace: bool, keep_install_options: bool, server: str | None,
               as_json: bool) -> None:
    """Restore a bundle from FILE ("-": stdin) onto this server.

    The whole bundle is read and checked first (every sha256 in its manifest, each SQLite
    database's integrity, nothing outside bindrop's places); a damaged or cut-short bundle
    is refused and nothing changes. Then the hub stops, blobs, app data, /etc/bindrop and the
    database are put in place (this server's own tokens are kept), and the hub starts again
    and starts every app that was running.

    Example: bindrop server import server.tar
    """
    if server:
        argv = _remote(server).bindrop_argv("server", "import", "-",
                                            *(["--replace"] if replace else []),
                                            *(["--keep-install-options"]
                                              if keep_install_options else []),
                                            *(["--json"] if as_json else []))
        with contextlib.ExitStack() as stack:
            source = sys.stdin.buffer if file == "-" else stack.enter_context(open(file, "rb"))
            proc = subprocess.run(argv, stdin=source, check=False)
        if proc.returncode != 0:
            sys.exit(proc.returncode)
        return
    from bindrop.moving.importer import SystemctlHub, import_bundle
    from bindrop.moving.install_options import carry_install_options, describe_install

    settings = _settings()
    with contextlib.ExitStack() as stack:
        try:
            source = sys.stdin.buffer if file == "-" else stack.enter_context(open(file, "rb"))
        except OSError as exc:
            raise InvalidInput(f"cannot read {file}: {exc.strerror}") from None
        result = import_bundle(settings, source, SystemctlHub(), replace=replace,
                               log=lambda m: click.echo(m, err=True), environ=os.environ)
    install = carry_install_options(settings, result.manifest.install,
                                    apply=not keep_install_options)
    if as_json:
        emit_json(result.to_dict() | {"install": install})
        return
    click.echo(f"imported {len(result.manifest.apps)} apps from {result.manifest.source} "
               f"({result.files} files, {format_bytes(result.bytes)}); the hub starts: "
               f"{', '.join(result.started) or 'none'}")
    click.echo(describe_install(install))
    kept = result.system_apps.kept
    click.echo(f"system apps are this server's own: {', '.join(kept) or 'none'} (the bundle's "
               f"{', '.join(result.system_apps.dropped) or 'none'} left behind)")


@click.command()
@click.argument("url")
@click.argument("install_args", nargs=-1, metavar="[-- INSTALL-OPTIONS]")
@click.option("--name", help="Save it under this name (default: the host).")
@click.option("--wheelhouse", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="A directory of wheels (bindrop's dependencies) to copy along.")
@click.option("--offline", is_flag=True,
              help="The server installs only from the wheels sent (no package index).")
@click.option("--restore-from-bucket", "restore_env", metavar="BUCKET-ENV",
              help="Then rebuild a dead server on it from the newest complete server backup "
                   "in the bucket named in this file (BINDROP_S3_* lines; see `bindrop server "
                   "restore`).")
@json_option
def setup(url: str, install_args: tuple[str, ...], name: str | None, wheelhouse: Path | None,
          offline: bool, restore_env: str | None, as_json: bool) -> None:
    """Install bindrop on a fresh server over SSH and save it by name.

    Copies a wheel of this very bindrop and deploy/bootstrap.sh to the server, runs the
    script there as root (packages, /opt/bindrop, `bindrop install`, the first admin token),
    and saves the server with that token. Running it again changes nothing on the server.

    Example: bindrop server setup ssh://root@203.0.113.7 --name prod
    """
    result, saved = _set_up(url, name, wheelhouse, offline, install_args)
    if restore_env is not None:
        click.echo(f"bindrop runs on {url}; saved as {saved.name!r}" + (
            f"; first admin token (saved; shown only now): {result.token}" if result.token
            else ""), err=True)
        argv = [sys.executable, "-m", "bindrop", "server", "restore", "--from-bucket",
                "--bucket-env", restore_env, "--server", saved.url,
                *(["--json"] if as_json else [])]
        # Its own report (or JSON) is the answer: the server is set up and restored.
        sys.exit(subprocess.run(argv, check=False).returncode)
    if as_json:
        emit_json({"name": saved.name, "url": saved.url, "token": result.token,
                   "existing_token": result.existing_token})
        return
    click.echo(f"bindrop runs on {url}; saved as {saved.name!r} (use --server {saved.name})")
    if result.token:
        click.echo(f"first admin token (saved; shown only now): {result.token}")
    else:
        click.echo(f"an admin token existed already ({result.existing_token}); none minted")


def _set_up(url: str, name: str | None, wheelhouse: Path | None, offline: bool,
            install_args: tuple[str, ...] = ()) -> tuple[Any, SavedServer]:
    from bindrop.moving.setup import set_up_server

    target = _remote(url)
    result = set_up_server(target, wheelhouse=wheelhouse, offline=offline,
                           install_args=install_args)
    name = name or target.host
    earlier = load_servers(os.environ).get(name)
    token = result.token or (earlier.token if earlier and earlier.url == target.url else None)
    saved = SavedServer(name, target.url, token)
    save_server(os.environ, saved)
    return result, saved


@click.command()
@click.option("--to", "to", metavar="ssh://root@NEW", help="The server to move to.")
@click.option("--finish", "--stop-source", "finish", is_flag=True,
              help="After DNS points at the new server: stop the moved apps on the source.")
@click.option("--http-port", type=click.IntRange(1, 65535), default=80, show_default=True,
              help="The new server's proxy port, where each app is checked by hostname "
                   "(the old server's, when the move carried its install options).")
@click.option("--timeout", type=float, default=180.0, show_default=True,
              help="Seconds to wait for every app to answer on the new server.")
@click.option("--replace", is_flag=True, help="Overwrite apps the new server has already.")
@click.option("--wheelhouse", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="For setting up the new server: wheels to copy along (see server setup).")
@click.option("--offline", is_flag=True, help="For setting up: no package index there.")
@_blobs_in_bucket
@json_option
@server_options
def migrate(to: str | None, finish: bool, http_port: int, timeout: float, replace: bool,
            wheelhouse: Path | None, offline: bool, blobs_in_bucket: bool, as_json: bool,
            server: str | None, token: str | None) -> None:
    """Move every app, its releases and its data from --server to a new server.

    Sets the new server up if it runs no bindrop, streams `server export` of the source into
    `server import` there (over SSH; nothing is stored in between), waits until every app
    that was running answers through the new server's proxy on each of its hostnames, and
    prints the DNS records to change. The source keeps serving; once DNS points at the new
    server, `bindrop migrate --finish` stops the moved apps on the source.

    Example: bindrop migrate --server ssh://root@old --to ssh://root@new
    """
    from bindrop.client.servers import DEFAULT_SERVER
    from bindrop.moving import migrate as moving

    source = _remote(server or DEFAULT_SERVER, "source")
    if finish:
        target, apps = moving.recorded_apps(os.environ, source.url)

        async def stop_all(client: Any) -> list[str]:
            for app in apps:
                await client.action(app, "stop")
            return apps

        stopped = call(server, token, stop_all)
        if as_json:
            emit_json({"source": source.url, "target": target, "stopped": stopped})
        else:
            click.echo(f"stopped {len(stopped)} apps on {source.url}: {', '.join(stopped)}; "
                       f"{target} serves them")
        return
    if not to:
        raise InvalidInput("say where to: --to ssh://root@NEW (or --finish after the move)")
    target = _remote(to, "target")

    def set_up() -> None:
        _set_up(to, None, wheelhouse, offline)

    report = moving.migrate(source, target, environ=os.environ, http_port=http_port,
                            timeout=timeout,
                            replace=replace, set_up=set_up, blobs_in_bucket=blobs_in_bucket,
                            log=lambda m: click.echo(m, err=True))
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_report(report, server or DEFAULT_SERVER)
    if not report.ok:
        sys.exit(1)


def _print_report(report: Any, source: str) -> None:
    click.echo(f"moved {len(report.apps)} apps from {report.source} to {report.target} "
               f"({format_bytes(report.bytes)})")
    for app in report.apps:
        state = ("stopped" if not app.should_run else "not checked" if app.served is None
                 else "answers" if app.served else "NOT ANSWERING")
        click.echo(f"  {app.name:<20} release {app.release or '-':<4} {state:<14} "
                   f"{' '.join(app.hosts)}")
    if report.install is not None:
        from bindrop.moving.install_options import describe_install

        click.echo(describe_install(report.install))
    if report.dns:
        click.echo(f"point these DNS records at the new server ({report.target_address}):")
        for r in report.dns:
            click.echo(f"  {r.name}.  {r.type}  {r.value}")
    click.echo(f"{report.source} keeps serving until: bindrop migrate --finish "
               f"--server {shlex.quote(source)}")

