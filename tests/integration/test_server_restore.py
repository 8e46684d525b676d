"""A dead server rebuilt from its bucket (#16). moto's S3 server is the bucket; machine A runs
apps (one writing to SQLite all the time) with that bucket; a server backup goes there; A is
destroyed; a fresh machine B is restored from the bucket alone. Every app answers through B's
proxy with its rows, env and releases; a rollback on B fetches its blob from the bucket;
B's own dashboard and the apps survive a hub restart and a reboot.

The tests run in order and share the machines (booting them is the expensive part).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bindrop.machine import Machine

from .carekit import S3_KEYS as KEYS
from .carekit import s3_bucket
from .hubkit import HANG, HELLO
from .serverkit import get_from
from .test_migrate import NOTES_APP

pytestmark = pytest.mark.integration
BUCKET = "dead-server"


@dataclass
class World:
    endpoint: str
    s3: Any
    scratch: Path
    a: Machine
    b: Machine
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def bucket_env(self) -> str:
        return (f"BINDROP_S3_BUCKET={BUCKET}\nBINDROP_S3_PREFIX=srv\n"
                f"BINDROP_S3_ENDPOINT={self.endpoint}\n"
                f"BINDROP_S3_ACCESS_KEY_ID={KEYS['aws_access_key_id']}\n"
                f"BINDROP_S3_SECRET_ACCESS_KEY={KEYS['aws_secret_access_key']}\n")


def bindrop(m: Machine, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The CLI on this host, against the machine's control socket."""
    proc = subprocess.run([sys.executable, "-m", "bindrop", *args, "--server",
                           f"unix:{m.control_socket}"], capture_output=True, text=True,
                          timeout=240, check=False)
    assert proc.returncode == 0 or not check, (args, proc.stdout, proc.stderr)
    return proc


def inside(m: Machine, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """bindrop run inside the machine, as on the server itself."""
    return m.exec(sys.executable, "-m", "bindrop", *args, check=False, timeout=timeout)


def get(m: Machine, host: str, path: str = "/") -> tuple[int, bytes]:
    port = m.running_state().http_port
    assert port is not None
    return get_from("127.0.0.1", port, host, path)


def wait_for(check: Callable[[], bool], what: str, timeout: float = HANG * 3) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def notes_rows(m: Machine) -> list[list[object]]:
    status, body = get(m, "notes.test")
    assert status == 200, body
    rows: list[list[object]] = json.loads(body)
    return rows


def releases(m: Machine, app: str) -> list[dict[str, Any]]:
    keep = ("number", "sha256", "command", "status")
    return [{k: r[k] for k in keep}
            for r in json.loads(bindrop(m, "releases", app, "--json").stdout)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    scratch = tmp_path_factory.mktemp("restore")
    tag = uuid.uuid4().hex[:6]
    a = Machine(f"rs-a-{tag}", scratch / "machines")
    b = Machine(f"rs-b-{tag}", scratch / "machines")
    with s3_bucket(BUCKET) as s3:
        try:
            yield World(s3.meta.endpoint_url, s3, scratch, a, b)
        finally:
            for m in (a, b):
                m.down(purge=True)


def test_a_server_with_a_bucket_writes_every_release_and_its_backup_there(world: World) -> None:
    w, a = world, world.a
    a.up(bare=False)
    a.exec("sh", "-c", "umask 077; cat > /etc/bindrop/care.env", input=w.bucket_env)
    a.exec("systemctl", "restart", "bindrop.service")  # the hub reads the bucket at start
    notes = w.scratch / "notes.py"
    notes.write_text(NOTES_APP)
    notes.chmod(0o755)
    bindrop(a, "create", "notes", "--host", "notes.test")
    bindrop(a, "deploy", "notes", str(notes))
    bindrop(a, "create", "site", "--host", "site.test")
    bindrop(a, "env", "set", "site", "GREETING=from-a")
    # Two releases with two blobs (a rollback must fetch the first one's).
    first = w.scratch / "hello1.py"
    first.write_text(HELLO.read_text() + "\n# release one\n")
    first.chmod(0o755)
    for label, program in (("site1", first), ("site2", HELLO)):
        bindrop(a, "deploy", "site", str(program), "--cmd", f"--label {label}")
    wait_for(lambda: get(a, "site.test")[1].startswith(b"site2 from site release 2"), "site")
    for app in ("notes", "site"):
        for r in releases(a, app):
            head = w.s3.head_object(Bucket=BUCKET, Key=f"srv/blobs/sha256/{r['sha256']}")
            assert head["ContentLength"] > 0
    w.facts["rows_before"] = len(notes_rows(a))
    assert w.facts["rows_before"] > 0
    backup = inside(a, "backup", "run", "--json")  # notes writes all the while
    assert backup.returncode == 0, backup.stderr
    done = json.loads(backup.stdout)
    assert done["uploaded"], done
    w.facts["rows_after"] = notes_rows(a)
    w.facts["releases"] = {app: releases(a, app) for app in ("notes", "site")}
    w.facts["env"] = json.loads(bindrop(a, "env", "list", "site", "--json").stdout)
    listed = w.s3.list_objects_v2(Bucket=BUCKET, Prefix="srv/")["Contents"]
    assert any(o["Key"].endswith("/server.tar.gz") for o in listed)


def test_a_fresh_server_restored_from_the_bucket_alone_serves_every_app_with_its_data(
    world: World,
) -> None:
    w, a, b = world, world.a, world.b
    a.down(purge=True)  # the server is gone: only the bucket is left
    b.up(bare=False)
    b.exec("sh", "-c", "umask 077; cat > /root/bucket.env", input=w.bucket_env)
    started = time.monotonic()
    proc = inside(b, "server", "restore", "--from-bucket", "--bucket-env", "/root/bucket.env",
                  "--json")
    w.facts["restore_s"] = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"], report
    assert {a["name"]: a["served"] for a in report["apps"]} == {"notes": True, "site": True}
    assert report["system_apps"]["kept"] == ["bindrop-dashboard"]
    # The same releases and env; the site answers with its live release.
    for app in ("notes", "site"):
        assert releases(b, app) == w.facts["releases"][app], app
    assert json.loads(bindrop(b, "env", "list", "site", "--json").stdout) == w.facts["env"]
    assert get(b, "site.test")[1].startswith(b"site2 from site release 2")
    # The exact rows the notes app had when the backup was taken (then it goes its own way).
    old, new = w.facts["rows_after"], notes_rows(b)
    common = next((i for i, (x, y) in enumerate(zip(old, new, strict=False)) if x != y),
                  min(len(old), len(new)))
    assert common >= w.facts["rows_before"]
    assert new[:common] == old[:common]


def test_a_rollback_on_the_restored_server_fetches_the_previous_blob_from_the_bucket(
    world: World,
) -> None:
    w, b = world, world.b
    previous = next(r for r in w.facts["releases"]["site"] if r["number"] == 1)
    blob = f"/var/lib/bindrop/blobs/sha256/{previous['sha256']}"
    # The restore fetched it just now: an hour later, the store is a cache of the bucket.
    b.exec("touch", "-c", "-d", "2 hours ago", blob)
    gc = inside(b, "gc", "--json")  # the bucket holds release 1: its local copy goes
    assert gc.returncode == 0, gc.stderr
    assert b.exec("test", "-e", blob, check=False).returncode != 0
    bindrop(b, "rollback", "site")
    wait_for(lambda: get(b, "site.test")[1].startswith(b"site1 from site release 1"),
             "the rolled-back site")
    assert b.exec("test", "-e", blob, check=False).returncode == 0


def test_the_restored_server_comes_back_after_a_hub_restart_and_a_reboot(world: World) -> None:
    b = world.b

    def all_answer() -> bool:
        return (get(b, "dashboard.localhost", "/healthz")[0] == 200
                and get(b, "site.test")[1].startswith(b"site1")
                and get(b, "notes.test")[0] == 200)

    restarted = b.exec("systemctl", "restart", "bindrop.service", check=False)
    assert restarted.returncode == 0, b.exec("journalctl", "-u", "bindrop.service", "-n", "60",
                                             "-o", "cat").stdout
    wait_for(all_answer, "the dashboard and the apps after a hub restart")
    bindrop(b, "restart", "bindrop-dashboard")
    b.down()
    b.up(bare=True)  # bindrop is installed already; it starts at boot
    wait_for(all_answer, "the dashboard and the apps after a reboot")
