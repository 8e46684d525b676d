"""Benchmark: a dead server restored from its bucket (issue 16). Not a test.

Run as root from the repository root (a few minutes):

    python bench/restore.py                   # 10 apps, 100 MiB of data in all
    python bench/restore.py --apps 3 --mib 10 # a quick smoke run

moto's S3 server on 127.0.0.1 is the bucket. Machine A (``bench-rs-a-<pid>``) gets the bucket
in /etc/bindrop/care.env, ``--apps`` apps (examples/hello/hello.py, each its own blob), and
each app's data directory ``--mib / --apps`` MiB: a SQLite database (half) and a random file
(half); then ``bindrop backup run`` (timed). A is purged; machine B boots with bindrop
installed and ``bindrop server restore --from-bucket`` runs inside it (timed from the start
of the command until it returned, which is after every app answered through B's proxy).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bindrop.machine import Machine
from tests.integration.carekit import s3_server

HELLO = Path(__file__).resolve().parents[1] / "examples" / "hello" / "hello.py"
KEYS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench-secret"}


def bindrop(m: Machine, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "bindrop", *args, "--server",
                           f"unix:{m.control_socket}"], capture_output=True, text=True,
                          check=False, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"bindrop {' '.join(args)}: {proc.stderr}")
    return proc.stdout


FILL = """
import os, sqlite3, sys
data, half = sys.argv[1], int(sys.argv[2])
with open(os.path.join(data, "blob.bin"), "wb") as f:
    f.write(os.urandom(half))
conn = sqlite3.connect(os.path.join(data, "app.db"))
conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)")
conn.executemany("INSERT INTO t (v) VALUES (?)", [(os.urandom(4096),) for _ in range(half // 4096)])
conn.commit()
"""


def fill(m: Machine, app: str, mib: float) -> None:
    """The app's data directory (made by its deploy): a SQLite database and a random file,
    ``mib`` in all."""
    half = int(mib * 1024 * 1024 / 2)
    m.exec(sys.executable, "-c", FILL, f"/var/lib/private/bindrop/apps/{app}", str(half))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--mib", type=float, default=100.0)
    args = parser.parse_args()
    import boto3

    scratch = Path(tempfile.mkdtemp(prefix="bench-restore-"))
    a = Machine(f"bench-rs-a-{os.getpid()}", scratch / "machines")
    b = Machine(f"bench-rs-b-{os.getpid()}", scratch / "machines")
    with s3_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     **KEYS).create_bucket(Bucket="bench")
        env = (f"BINDROP_S3_BUCKET=bench\nBINDROP_S3_ENDPOINT={endpoint}\n"
               f"BINDROP_S3_ACCESS_KEY_ID={KEYS['aws_access_key_id']}\n"
               f"BINDROP_S3_SECRET_ACCESS_KEY={KEYS['aws_secret_access_key']}\n")
        try:
            a.up(bare=False)
            a.exec("sh", "-c", "umask 077; cat > /etc/bindrop/care.env", input=env)
            a.exec("systemctl", "restart", "bindrop.service")
            for i in range(args.apps):
                app = f"app{i}"
                program = scratch / f"{app}.py"
                program.write_text(HELLO.read_text() + f"\n# {app}\n")
                program.chmod(0o755)
                bindrop(a, "create", app, "--host", f"{app}.bench")
                bindrop(a, "deploy", app, str(program))
                fill(a, app, args.mib / args.apps)
            started = time.monotonic()
            a.exec(sys.executable, "-m", "bindrop", "backup", "run", timeout=900)
            backup_s = time.monotonic() - started
            a.down(purge=True)
            b.up(bare=False)
            b.exec("sh", "-c", "umask 077; cat > /root/bucket.env", input=env)
            started = time.monotonic()
            proc = b.exec(sys.executable, "-m", "bindrop", "server", "restore",
                          "--from-bucket", "--bucket-env", "/root/bucket.env", "--json",
                          timeout=900)
            restore_s = time.monotonic() - started
            report = json.loads(proc.stdout)
            answered = sum(1 for x in report["apps"] if x["served"])
            print(json.dumps({"apps": args.apps, "data_mib": args.mib,
                              "backup_s": round(backup_s, 1),
                              "restore_s": round(restore_s, 1),
                              "restored_bytes": report["bytes"],
                              "apps_answering": answered}, indent=1))
        finally:
            for m in (a, b):
                m.down(purge=True)


if __name__ == "__main__":
    main()
