"""``bindrop bucket show|set|off``: the bucket release blobs and backups go to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from bindrop.cli.remote import emit, json_option, remote

Run = Callable[..., Any]


@click.group()
def bucket() -> None:
    """The S3-compatible bucket of this server: every release blob is written there on
    upload (the server's blob store is then a cache), and backups go there.

    Example: bindrop bucket set --bucket my-bindrop --endpoint https://s3.example.com
    """


def _print(done: dict[str, Any]) -> None:
    if not done.get("bucket"):
        click.echo("no bucket: release blobs and backups stay on this server")
        return
    click.echo(f"bucket s3://{done['bucket']}/{done['prefix']} at "
               f"{done.get('endpoint') or 'AWS'} ({done['region']}); blobs written there: "
               f"{'yes' if done['blobs_in_bucket'] else 'from the next hub start'}"
               + (f"; {done['blobs_sent']} blobs sent now" if "blobs_sent" in done else ""))


@bucket.command()
@json_option
@remote
def show(as_json: bool, run: Run) -> None:
    """Show the bucket (never its secret key).

    Example: bindrop bucket show --json
    """
    emit(run(lambda c: c.bucket()), as_json, _print)


@bucket.command(name="set")
@click.option("--bucket", "name", required=True, envvar="BINDROP_S3_BUCKET",
              help="The bucket's name. [env: BINDROP_S3_BUCKET]")
@click.option("--prefix", default="bindrop", show_default=True, envvar="BINDROP_S3_PREFIX",
              help="Key prefix inside the bucket. [env: BINDROP_S3_PREFIX]")
@click.option("--endpoint", envvar="BINDROP_S3_ENDPOINT",
              help="An S3-compatible service's URL (none: AWS). [env: BINDROP_S3_ENDPOINT]")
@click.option("--region", default="us-east-1", show_default=True, envvar="BINDROP_S3_REGION",
              help="[env: BINDROP_S3_REGION]")
@click.option("--access-key-id", envvar="BINDROP_S3_ACCESS_KEY_ID",
              help="[env: BINDROP_S3_ACCESS_KEY_ID]")
@click.option("--secret-access-key", envvar="BINDROP_S3_SECRET_ACCESS_KEY",
              help="Better given in the environment. [env: BINDROP_S3_SECRET_ACCESS_KEY]")
@json_option
@remote
def set_bucket(name: str, prefix: str, endpoint: str | None, region: str,
               access_key_id: str | None, secret_access_key: str | None, as_json: bool,
               run: Run) -> None:
    """Use this bucket: checked first, kept in /etc/bindrop/care.env (mode 0600), and every
    blob on the server is written there now.

    Example: bindrop bucket set --bucket my-bindrop --access-key-id AKIAEXAMPLE
    """
    values = {"bucket": name, "prefix": prefix, "endpoint": endpoint, "region": region,
              "access_key_id": access_key_id, "secret_access_key": secret_access_key}
    emit(run(lambda c: c.set_bucket({k: v for k, v in values.items() if v})), as_json, _print)


@bucket.command()
@json_option
@remote
def off(as_json: bool, run: Run) -> None:
    """No bucket: blobs and backups stay on this server (those in the bucket stay there).

    Example: bindrop bucket off
    """
    emit(run(lambda c: c.bucket_off()), as_json, _print)
