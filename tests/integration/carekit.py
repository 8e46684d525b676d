"""Helpers for server-care tests: the SQLite-writing app, the CLI with care settings, S3."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from bindrop.api import ApiServer
from bindrop.cli.main import cli
from bindrop.hub.commands import Deploy
from bindrop.hub.hub import Hub
from bindrop.machine import Machine
from bindrop.settings import Settings

WRITER = Path(__file__).resolve().parent / "apps" / "sqlite_writer.py"
#: The keys the tests' S3 server (moto) is asked with.
S3_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing-secret"}


def apps_data(machine: Machine) -> Path:
    """Where the machine's systemd keeps apps' data (DynamicUser StateDirectory), on the host."""
    return machine.layout.private_dir("/var/lib/private") / "bindrop" / "apps"


def care_env(machine: Machine, settings: Settings, api: ApiServer,
             **extra: str) -> dict[str, str]:
    """The CLI's environment: only where the server is. No BINDROP_ROOT: the care commands
    act on the server's files (through its hub), never on the CLI's own."""
    return {"BINDROP_SERVER": f"unix:{api.socket_path}", "BINDROP_TOKEN": "",
            "BINDROP_ROOT": "/nonexistent-cli-root", **extra}


async def bindrop(env: dict[str, str], *args: str) -> Result:
    """``bindrop ARGS`` in a thread (the CLI runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def deploy_writer(hub: Hub, app: str, *args: str) -> None:
    """Create ``app`` running the SQLite writer with ``args`` and deploy it."""
    from bindrop.store import AppConfig

    hub.store.create_app(AppConfig(name=app, hosts=(f"{app}.test",)))
    blob = hub.blobs.put_file(WRITER, max_size=1 << 20)
    release = hub.store.add_release(app, blob.sha256, blob.size, "binary", list(args), "tests")
    await hub.call(app, Deploy(release.number))


def table_rows(path: Path) -> list[tuple[int, str]]:
    """The writer's rows; none while the file or its table does not exist yet."""
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT id, v FROM t ORDER BY id").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        conn.close()


async def wait_for(predicate: Any, timeout: float = 30.0, what: str = "") -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def s3_server() -> Iterator[str]:
    """A real S3-compatible HTTP server (moto's server mode) on 127.0.0.1; yields its URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@contextmanager
def s3_bucket(bucket: str) -> Iterator[Any]:
    """An S3 server (as s3_server) with ``bucket`` made in it; yields a boto3 client of it
    (its URL: ``client.meta.endpoint_url``), asking with S3_KEYS."""
    import boto3

    with s3_server() as endpoint:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **S3_KEYS)
        client.create_bucket(Bucket=bucket)
        yield client
