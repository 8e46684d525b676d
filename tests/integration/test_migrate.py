"""Moving a whole server (#9): two machines, each with its own network namespace, address and
sshd; three apps with data on the first (one writing to SQLite all the time); `bindrop migrate`
to the second, which is bare and gets bootstrapped on the way.

The tests run in order and share the two machines (booting them is the expensive part).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator

import pytest

from bindrop.moving.setup import REMOTE_DIR

from .hubkit import HANG, HELLO
from .serverkit import (
    SSHD,
    World,
    get,
    ssh_world,
    start_sshd,
    wait_for_ssh,
)
from .wheels import wheelhouse

pytestmark = pytest.mark.integration

#: An app that never stops writing: a row with a random value every 20 ms into a SQLite
#: database (WAL) in its data directory; GET / answers all rows as JSON.
NOTES_APP = '''#!/usr/bin/python3
import json, os, sqlite3, threading, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
conn = sqlite3.connect(os.path.join(os.environ["STATE_DIRECTORY"], "notes.db"),
                       check_same_thread=False, isolation_level=None)
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, value TEXT)")
lock = threading.Lock()
def write():
    while True:
        with lock:
            conn.execute("INSERT INTO notes (value) VALUES (?)", (uuid.uuid4().hex,))
        time.sleep(0.02)
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        with lock:
            rows = conn.execute("SELECT id, value FROM notes ORDER BY id").fetchall()
        body = json.dumps(rows).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
threading.Thread(target=write, daemon=True).start()
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
'''

APPS = ("counter", "notes", "site")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if os.geteuid() != 0 or not SSHD.exists() or not shutil.which("ssh") \
            or not shutil.which("ip"):
        reason = "needs root, sshd, ssh and ip (apt-get install openssh-server iproute2)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    scratch = tmp_path_factory.mktemp("moving")
    w, keys = ssh_world(scratch, "mv", f"10.213.{os.getpid() % 250}", wheelhouse())
    old, new = w.old, w.new
    try:
        old.up(bare=False, net=f"{w.old_addr}/24")
        new.up(bare=True, net=f"{w.new_addr}/24")
        for m in (old, new):
            start_sshd(m, keys)
        wait_for_ssh(w, w.old_addr)
        wait_for_ssh(w, w.new_addr)
        local = f"unix:{old.control_socket}"
        notes = scratch / "notes.py"
        notes.write_text(NOTES_APP)
        notes.chmod(0o755)
        w.bindrop("create", "counter", "--host", "counter.test", "--server", local)
        w.bindrop("deploy", "counter", str(HELLO), "--cmd", "--label counter", "--server", local)
        w.bindrop("create", "notes", "--host", "notes.test", "--server", local)
        w.bindrop("deploy", "notes", str(notes), "--server", local)
        w.bindrop("create", "site", "--host", "site.test", "--host", "www.site.test",
                  "--server", local)
        for label in ("site1", "site2"):
            w.bindrop("deploy", "site", str(HELLO), "--cmd", f"--label {label}", "--server",
                      local)
        for _ in range(5):
            assert get(w.old_addr, "counter.test")[0] == 200
        yield w
    finally:
        for m in (old, new):
            m.down(purge=True)


def notes_rows(address: str) -> list[list[object]]:
    status, body = get(address, "notes.test")
    assert status == 200, body
    rows: list[list[object]] = json.loads(body)
    return rows


def test_migrate_sets_up_the_new_server_and_moves_every_app_with_its_releases_and_rows(
    world: World,
) -> None:
    w = world
    rows_before = len(notes_rows(w.old_addr))
    assert rows_before > 0
    started = time.monotonic()
    proc = w.bindrop("migrate", "--server", w.old_url, "--to", w.new_url, "--wheelhouse",
                     str(w.wheelhouse), "--offline", "--timeout", "90", "--json", check=False)
    w.facts["migrate_s"] = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and report["set_up"]
    assert {a["name"]: a["served"] for a in report["apps"]} == dict.fromkeys(APPS, True)
    # The old server's install options came along (it had no HTTPS socket; the new one,
    # set up with the defaults, had one until the import re-ran `bindrop install`).
    assert report["install"]["differing"] == ["https_port"], report["install"]
    assert report["install"]["applied"], report["install"]
    assert w.new.exec("systemctl", "is-enabled", "bindrop-proxy-https.socket",
                      check=False).returncode != 0
    assert {(r["name"], r["value"]) for r in report["dns"]} == {
        (h, w.new_addr) for h in ("counter.test", "notes.test", "site.test", "www.site.test")}
    # The same releases, by number, bytes and command.
    for app in APPS:
        keep = ("number", "sha256", "command", "status")
        old = [{k: r[k] for k in keep} for r in json.loads(w.bindrop(
            "releases", app, "--json", "--server", w.old_url).stdout)]
        new = [{k: r[k] for k in keep} for r in json.loads(w.bindrop(
            "releases", app, "--json", "--server", w.new_url).stdout)]
        assert new == old, app
    # The same data: the counter counts on (5 visits on the old server), and the new
    # server's notes start with every row the old one had before the move, then go their way.
    status, body = get(w.new_addr, "counter.test")
    assert status == 200 and body.startswith(b"counter from counter release 1")
    assert int(body.split(b"visit ")[1].split()[0]) > 5
    assert get(w.new_addr, "www.site.test")[1].startswith(b"site2 from site release 2")
    old_rows, new_rows = notes_rows(w.old_addr), notes_rows(w.new_addr)
    common = next((i for i, (a, b) in enumerate(zip(old_rows, new_rows, strict=False))
                   if a != b), min(len(old_rows), len(new_rows)))
    assert common >= rows_before
    deadline = time.monotonic() + HANG  # and it goes on writing there
    while len(notes_rows(w.new_addr)) <= len(new_rows):
        assert time.monotonic() < deadline, "the moved notes app wrote nothing more"
        time.sleep(0.2)
    # The old server still serves everything.
    for host in ("counter.test", "notes.test", "site.test"):
        assert get(w.old_addr, host)[0] == 200, host
    saved = json.loads((w.scratch / "config" / "bindrop" / "servers.json").read_text())
    assert saved[w.new_addr]["url"] == w.new_url and saved[w.new_addr]["token"]


def test_bootstrap_a_second_time_changes_nothing_and_mints_no_token(world: World) -> None:
    """The migration bootstrapped the bare machine; the same script with the same wheel (left
    in /var/tmp/bindrop-setup by `server setup`) again: no reinstall, no restart, no token."""
    w = world
    stamp = w.new.exec("cat", "/opt/bindrop/.bindrop-wheel.sha256").stdout
    hub = w.new.exec("systemctl", "show", "-P", "InvocationID", "bindrop.service").stdout
    # With the install options the migration carried from the old server (no HTTPS socket).
    again = w.new.exec("sh", "-c", f"cd {REMOTE_DIR} && bash bootstrap.sh --wheel bindrop-*.whl "
                       "--find-links wheels --offline -- --https-port off", timeout=HANG * 4)
    assert again.stdout.strip() == "BINDROP_TOKEN_EXISTS=admin"
    assert "(unchanged)" in again.stderr and "is installed already" in again.stderr
    assert "creating the virtualenv" not in again.stderr
    assert w.new.exec("cat", "/opt/bindrop/.bindrop-wheel.sha256").stdout == stamp
    assert w.new.exec("systemctl", "show", "-P", "InvocationID",
                      "bindrop.service").stdout == hub
    tokens = json.loads(w.bindrop("token", "list", "--json", "--server", w.new_url).stdout)
    assert [t["name"] for t in tokens if t["scope"] == "admin"] == ["admin"]
    # The token saved by setup is the new server's own, kept by the import.
    assert json.loads(w.bindrop("server", "list", "--json").stdout) == [
        {"name": w.new_addr, "url": w.new_url, "token": True}]


def test_a_bundle_with_one_flipped_byte_is_refused_before_anything_changes(
    world: World,
) -> None:
    w = world
    bundle = w.scratch / "old.tar"
    w.bindrop("server", "export", str(bundle), "--server", w.old_url)
    data = bytearray(bundle.read_bytes())
    at = data.find(b"bindrop's example app")  # inside the hello release's blob
    assert at > 0
    data[at] ^= 0x20
    bundle.write_bytes(bytes(data))

    def state() -> tuple[str, str, str]:
        hub = w.new.exec("systemctl", "show", "-P", "InvocationID", "bindrop.service").stdout
        # Blobs with their sizes; app data by name (the notes app writes all the time).
        files = w.new.exec("sh", "-c", "cd /var/lib && { find bindrop/blobs -printf '%p %s\\n';"
                           " find private/bindrop -printf '%p\\n'; } | sort").stdout
        return hub, files, w.bindrop("apps", "--json", "--server", w.new_url).stdout

    before = state()
    refused = w.bindrop("server", "import", str(bundle), "--replace", "--server", w.new_url,
                        check=False)
    assert refused.returncode != 0
    assert "bundle refused, nothing was changed" in refused.stderr
    assert "does not match its sha256" in refused.stderr
    assert state() == before
    assert not w.new.exec("sh", "-c", "ls -a /var/lib/bindrop").stdout.count(".import-")


def test_finish_stops_the_apps_on_the_old_server_and_the_new_one_serves_on(
    world: World,
) -> None:
    w = world
    proc = w.bindrop("migrate", "--finish", "--server", w.old_url, "--json")
    assert sorted(json.loads(proc.stdout)["stopped"]) == list(APPS)
    for host in ("counter.test", "notes.test", "site.test"):
        assert get(w.old_addr, host)[0] == 503, host
        assert get(w.new_addr, host)[0] == 200, host


def dashboard_launcher(w: World) -> str:
    """The script the new server's dashboard runs (its current release's blob)."""
    releases = json.loads(w.bindrop("releases", "bindrop-dashboard", "--json", "--server",
                                    w.new_url).stdout)
    live = next(r for r in releases if r["status"] == "live")
    return w.new.exec("cat", f"/var/lib/bindrop/blobs/sha256/{live['sha256']}").stdout


def wait_for(check: object, what: str, timeout: float = HANG * 3) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{what} did not happen"
        time.sleep(0.3)


def test_the_new_server_runs_its_own_dashboard_which_restarts_and_survives_a_reboot(
    world: World,
) -> None:
    """#16: the moved server's dashboard is its own (its Python, its API port), not the old
    server's launcher: `bindrop restart` works, and so does a reboot."""
    w = world
    launcher = dashboard_launcher(w)
    assert "/opt/bindrop/" in launcher, launcher  # the new server's bindrop (bootstrap's)
    assert sys.executable not in launcher  # not the old server's
    w.bindrop("restart", "bindrop-dashboard", "--server", w.new_url)
    assert get(w.new_addr, "dashboard.localhost", "/healthz")[0] == 200
    w.new.down()
    w.new.up(bare=True, net=f"{w.new_addr}/24")  # bindrop is installed; it starts at boot
    start_sshd(w.new, w.scratch / "keys")
    wait_for_ssh(w, w.new_addr)
    wait_for(lambda: get(w.new_addr, "dashboard.localhost", "/healthz")[0] == 200,
             "the dashboard answering after a reboot")
    for host in ("counter.test", "notes.test", "site.test"):
        wait_for(lambda h=host: get(w.new_addr, h)[0] == 200, f"{host} answering")
    assert dashboard_launcher(w) == launcher
