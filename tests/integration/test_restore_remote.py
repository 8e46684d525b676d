"""A dead server rebuilt from a laptop (#16): the README's commands over SSH. Machine A (its
own network namespace) backs up to moto's S3 server (listening on the machines' bridge) and
is destroyed; `bindrop server setup ssh://B --restore-from-bucket bucket.env` sets the bare
machine B up and restores it, the bucket's keys sent over SSH's stdin, never on a command
line."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator

import pytest

from .carekit import free_port
from .hubkit import HELLO
from .serverkit import SSHD, World, get, ssh_world, start_sshd, wait_for_ssh
from .wheels import wheelhouse

pytestmark = pytest.mark.integration
KEYS = {"aws_access_key_id": "laptop", "aws_secret_access_key": "laptop-secret"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if os.geteuid() != 0 or not SSHD.exists() or not shutil.which("ssh") \
            or not shutil.which("ip"):
        pytest.skip("needs root, sshd, ssh and ip")
    from moto.server import ThreadedMotoServer

    wheels = wheelhouse()
    scratch = tmp_path_factory.mktemp("restore-remote")
    subnet = f"10.214.{os.getpid() % 250}"
    w, keys = ssh_world(scratch, "rr", subnet, wheels)
    old, new = w.old, w.new
    moto = None
    try:
        old.up(bare=False, net=f"{w.old_addr}/24")
        new.up(bare=True, net=f"{w.new_addr}/24")
        start_sshd(new, keys)
        wait_for_ssh(w, w.new_addr)
        # On the host's end of the machines' bridge: both machines reach it.
        port = free_port()
        moto = ThreadedMotoServer(ip_address=f"{subnet}.1", port=port, verbose=False)
        moto.start()
        endpoint = f"http://{subnet}.1:{port}"
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     **KEYS).create_bucket(Bucket="laptop")
        w.facts["bucket_env"] = (
            f"BINDROP_S3_BUCKET=laptop\nBINDROP_S3_ENDPOINT={endpoint}\n"
            f"BINDROP_S3_ACCESS_KEY_ID={KEYS['aws_access_key_id']}\n"
            f"BINDROP_S3_SECRET_ACCESS_KEY={KEYS['aws_secret_access_key']}\n")
        yield w
    finally:
        if moto is not None:
            moto.stop()
        for m in (old, new):
            m.down(purge=True)


def test_setup_with_restore_from_bucket_rebuilds_the_dead_server_on_a_bare_one(
    world: World,
) -> None:
    w = world
    local = f"unix:{w.old.control_socket}"
    w.old.exec("sh", "-c", "umask 077; cat > /etc/bindrop/care.env",
               input=w.facts["bucket_env"])
    w.old.exec("systemctl", "restart", "bindrop.service")
    w.bindrop("create", "site", "--host", "site.test", "--server", local)
    w.bindrop("deploy", "site", str(HELLO), "--cmd", "--label laptop", "--server", local)
    w.bindrop("env", "set", "site", "WHERE=bucket", "--server", local)
    backup = w.old.exec(sys.executable, "-m", "bindrop", "backup", "run", "--json",
                        check=False, timeout=300)
    assert backup.returncode == 0, backup.stderr
    w.old.down(purge=True)

    bucket_env = w.scratch / "bucket.env"
    bucket_env.write_text(w.facts["bucket_env"])
    proc = w.bindrop("server", "setup", w.new_url, "--wheelhouse", str(w.wheelhouse),
                     "--offline", "--restore-from-bucket", str(bucket_env), "--json",
                     check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "laptop-secret" not in proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and {a["name"]: a["served"] for a in report["apps"]} == {"site": True}
    assert report["dns"] == [{"name": "site.test", "type": "A", "value": w.new_addr}]
    status, body = get(w.new_addr, "site.test")
    assert status == 200 and body.startswith(b"laptop from site release 1")
    assert json.loads(w.bindrop("env", "list", "site", "--json", "--server",
                                w.new_url).stdout) == {"WHERE": "bucket"}
    # The keys went over stdin: nothing on the new server's command lines or in its journal.
    journal = w.new.exec("journalctl", "-o", "cat", "--no-pager").stdout
    assert "laptop-secret" not in journal
    # A second restore of the same backup onto it is refused: it has apps now.
    again = w.bindrop("server", "restore", "--from-bucket", "--bucket-env", str(bucket_env),
                      "--server", w.new_url, check=False)
    assert again.returncode != 0 and "--replace" in again.stderr
