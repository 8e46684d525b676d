"""``bindrop server restore``: rebuild a dead server from its backup (the bucket, or a
folder). Thin: the work is in ``bindrop.moving.restore_server`` and runs on the server
itself (with ``--server ssh://…``, there over SSH)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from bindrop.cli.remote import emit_json, json_option
from bindrop.domain.sizes import format_bytes
from bindrop.errors import InvalidInput
from bindrop.serve.moving import _remote, _settings, _ssh_server


@click.command(name="restore")
@click.option("--from-bucket", is_flag=True,
              help="Restore the newest complete server backup in the bucket (BINDROP_S3_*: "
                   "from --bucket-env, the environment, or /etc/bindrop/care.env).")
@click.option("--from", "from_path", metavar="PATH",
              help="Restore from a local backup: one backup's folder, or a folder of backups "
                   "(the newest complete one), on the server.")
@click.option("--backup", "backup_id", metavar="ID",
              help="This backup rather than the newest (`bindrop backup list` shows ids).")
@click.option("--bucket-env", metavar="FILE",
              help="KEY=VALUE lines naming the bucket and its keys (BINDROP_S3_BUCKET, "
                   "_ENDPOINT, _REGION, _PREFIX, _ACCESS_KEY_ID, _SECRET_ACCESS_KEY), as in "
                   "care.env; read here and sent along with --server.")
@click.option("--replace", is_flag=True, help="Restore even though this server has apps.")
@click.option("--address", metavar="IP",
              help="The address the DNS records should name (with --server: that server's).")
@click.option("--timeout", type=float, default=120.0, show_default=True,
              help="Seconds to wait for every app to answer through this server's proxy.")
@_ssh_server
@json_option
def restore_cmd(from_bucket: bool, from_path: str | None, backup_id: str | None,
                bucket_env: str | None, replace: bool, address: str | None, timeout: float,
                server: str | None, as_json: bool) -> None:
    """Rebuild a server from a server backup: database, /etc/bindrop, apps' data, blobs.

    Every part and every blob a release needs is checked (sha256) before anything changes;
    a damaged or incomplete backup is refused and the server stays as it was. Then the hub
    stops, everything moves into place (this server keeps its own tokens and its own
    dashboard), the hub starts every app that should run, and each is asked through this
    server's proxy. Prints which apps answer and the DNS records to change.

    Example: bindrop server restore --from-bucket --bucket-env bucket.env --server ssh://root@new
    """
    if from_bucket == (from_path is not None):
        raise InvalidInput("say where from: --from-bucket, or --from PATH (a backup folder)")
    env_text = None
    if bucket_env is not None:
        try:
            env_text = sys.stdin.read() if bucket_env == "-" else Path(bucket_env).read_text()
        except OSError as exc:
            raise InvalidInput(f"cannot read {bucket_env}: {exc.strerror}") from None
    if server:
        from bindrop.moving.migrate import resolve

        target = _remote(server)
        flags = (["--from-bucket"] if from_bucket else ["--from", str(from_path)]) + [
            *(["--backup", backup_id] if backup_id else []),
            *(["--bucket-env", "-"] if env_text is not None else []),
            *(["--replace"] if replace else []), "--timeout", str(timeout),
            "--address", address or resolve(target.host),
            *(["--json"] if as_json else [])]
        proc = subprocess.run(target.bindrop_argv("server", "restore", *flags),
                              input=(env_text or "").encode(), check=False)
        sys.exit(proc.returncode)
    report = _restore_here(from_bucket, from_path, backup_id, env_text, replace, timeout,
                           address)
    if as_json:
        emit_json(report)
        return
    _print(report)
    if not report["ok"]:
        sys.exit(1)


def _restore_here(from_bucket: bool, from_path: str | None, backup_id: str | None,
                  env_text: str | None, replace: bool, timeout: float,
                  address: str | None) -> dict[str, Any]:
    from bindrop.care.config import load_care_settings, parse_env_file
    from bindrop.moving.importer import SystemctlHub
    from bindrop.moving.install_options import read_install_options
    from bindrop.moving.migrate import dns_records
    from bindrop.moving.readiness import plan_probes, wait_until_served
    from bindrop.moving.restore_server import restore_from_bucket, restore_from_folder

    settings = _settings()
    environ = dict(os.environ)
    if env_text is not None:
        environ.update(parse_env_file(env_text))

    def log(message: str) -> None:
        click.echo(message, err=True)

    if from_bucket:
        s3 = load_care_settings(settings, environ).s3
        if s3 is None:
            raise InvalidInput("which bucket? give --bucket-env FILE with BINDROP_S3_BUCKET "
                               "and its keys (as in the old server's care.env)")
        restored = restore_from_bucket(settings, s3, SystemctlHub(), backup_id=backup_id,
                                       replace=replace, environ=environ, log=log)
    else:
        restored = restore_from_folder(settings, Path(str(from_path)), SystemctlHub(),
                                       backup_id=backup_id, replace=replace, environ=environ,
                                       log=log)
    installed = read_install_options(settings, [])
    port = installed.http_port if installed and installed.http_port else 80
    everything: Any = restored.imported.to_dict()["app_details"]
    details = [a for a in everything if not a["system"]]
    probes = [p for a in details if a["should_run"]
              for p in plan_probes(a["name"], a["hosts"], a.get("health_path"))]
    log(f"waiting for {len(probes)} hostnames to answer through 127.0.0.1:{port}")
    served = wait_until_served("127.0.0.1", port, probes, timeout, progress=log)
    apps = [{"name": a["name"], "hosts": a["hosts"], "release": a["current_release"],
             "should_run": a["should_run"],
             "served": served.get(a["name"]) if a["should_run"] else None} for a in details]
    return {**restored.to_dict(), "apps": apps, "http_port": port,
            "dns": [{"name": r.name, "type": r.type, "value": r.value} for r in
                    dns_records([h for a in details for h in a["hosts"]],
                                            address or "THIS-SERVER")],
            "ok": all(a["served"] is not False for a in apps)}


def _print(report: dict[str, Any]) -> None:
    click.echo(f"restored backup {report['backup']} from {report['from']}: "
               f"{len(report['apps'])} apps ({format_bytes(int(report['bytes']))})")
    for app in report["apps"]:
        state = ("stopped" if not app["should_run"] else
                 "answers" if app["served"] else "NOT ANSWERING")
        click.echo(f"  {app['name']:<20} release {app['release'] or '-':<4} {state:<14} "
                   f"{' '.join(app['hosts'])}")
    if report["missing_blobs"]:
        click.echo(f"releases whose blob was lost: {len(report['missing_blobs'])}")
    if report["dns"]:
        click.echo("point these DNS records at this server:")
        for r in report["dns"]:
            click.echo(f"  {r['name']}.  {r['type']}  {r['value']}")
    click.echo("restored: bindrop's database (apps, releases, env, routes, cron jobs, "
               "tokens), /etc/bindrop (settings, TLS, care and alert settings), the apps' "
               "data, every release's blob; not restored: this server's install options "
               "(ports, hosts: `bindrop install` sets them) and its own dashboard, kept")
