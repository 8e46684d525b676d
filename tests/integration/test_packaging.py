"""bindrop as users install it (#18): the wheel and the sdist built the standard way, the wheel
installed into a fresh virtualenv outside the checkout, and that bindrop alone boots a full
server, deploys the example app and serves it and the dashboard through its proxy."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import bindrop
from bindrop.moving.wheel import build_wheel, source_root, wheel_name
from bindrop.version import build_commit

from .serverkit import get_from
from .wheels import wheelhouse

pytestmark = pytest.mark.integration

CHECKOUT = Path(bindrop.__file__).resolve().parent.parent
HELLO = CHECKOUT / "examples" / "hello" / "hello.py"
#: Files every install needs at run time, beside the Python modules.
PACKAGE_DATA = ("bindrop/deploy/bindrop.service", "bindrop/deploy/bindrop-proxy.socket",
                "bindrop/deploy/bootstrap.sh",
                "bindrop/dashboard/templates/", "bindrop/dashboard/static/",
                "bindrop/proxy/templates/", "bindrop/py.typed")


def _has(names: set[str], wanted: str) -> bool:
    return any(n.startswith(wanted) for n in names) if wanted.endswith("/") else wanted in names


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and the sdist, as `python -m build` makes them from the checkout."""
    if source_root() is None:
        pytest.skip("needs a checkout of bindrop")
    out = tmp_path_factory.mktemp("dist")
    # A copy: building in the checkout would leave build/ and egg-info behind.
    tree = out / "src"
    shutil.copytree(CHECKOUT, tree, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
        ".test-artifacts", ".machines"))
    # (the copy has no .git: it is told the checkout's commit, as a build in it would find)
    env = {**os.environ, "BINDROP_BUILD_COMMIT": build_commit() or ""}
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                    str(tree)], check=True, capture_output=True, timeout=300, env=env)
    return out


def test_the_wheel_carries_every_file_bindrop_reads_at_run_time(dist: Path) -> None:
    with zipfile.ZipFile(dist / wheel_name()) as zf:
        names = set(zf.namelist())
        entry_points = zf.read(f"bindrop-{bindrop.__version__}.dist-info/entry_points.txt")
    missing = [w for w in PACKAGE_DATA if not _has(names, w)]
    assert not missing, f"the wheel lacks {missing}"
    assert b"bindrop = bindrop.cli.main:cli" in entry_points
    # The server's entry points, which the CLI imports by name only (#19).
    assert "bindrop/serve/hub.py" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith(("deploy/", "tests/"))]


def test_the_sdist_holds_what_the_wheel_needs(dist: Path, tmp_path: Path) -> None:
    sdist = dist / f"bindrop-{bindrop.__version__}.tar.gz"
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    # A wheel built from the sdist alone has the same files as the one built from the checkout.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(tmp_path / "w"),
                    str(tmp_path / f"bindrop-{bindrop.__version__}")],
                   check=True, capture_output=True, timeout=300)
    with zipfile.ZipFile(tmp_path / "w" / wheel_name()) as a, \
            zipfile.ZipFile(dist / wheel_name()) as b:
        from_sdist, from_checkout = set(a.namelist()), set(b.namelist())
    assert from_sdist == from_checkout


def test_server_setup_builds_a_reproducible_wheel_with_the_commit(tmp_path: Path) -> None:
    if source_root() is None:
        pytest.skip("needs a checkout of bindrop")
    first = build_wheel(tmp_path)
    (tmp_path / "again").mkdir()
    again = build_wheel(tmp_path / "again")
    assert first.read_bytes() == again.read_bytes()  # a re-run reinstalls nothing
    with zipfile.ZipFile(first) as zf:
        names = set(zf.namelist())
        commit = zf.read("bindrop/BUILD_COMMIT").decode().strip()
    assert not [w for w in PACKAGE_DATA if not _has(names, w)]
    head = subprocess.run(["git", "-C", str(CHECKOUT), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=False).stdout
    if head:
        assert head.startswith(commit)


@dataclass
class Venv:
    root: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(self.root / "bin" / args[0]), *args[1:]], env=self.env,
                              cwd=self.root.parent, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, check=False, timeout=timeout)
        assert proc.returncode == 0 or not check, (args, proc.stdout, proc.stderr)
        return proc


def _distribution_python() -> str:
    """The distribution's Python 3.11+ when it has venv, as bootstrap.sh picks it on a server
    (Debian 12's is 3.11.2: no tarfile extraction filters); else the one running the tests."""
    debian = "/usr/bin/python3"
    ok = Path(debian).exists() and subprocess.run(
        [debian, "-c", "import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))"],
        capture_output=True, check=False).returncode == 0
    return debian if ok else sys.executable


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A fresh virtualenv in a folder of its own, with only the built wheel (and its
    dependencies, from a local wheelhouse) in it; nothing of the checkout on its path."""
    root = tmp_path_factory.mktemp("users-home") / "venv"
    subprocess.run([_distribution_python(), "-m", "venv", str(root)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
           and not k.startswith("BINDROP_")}
    env["PATH"] = f"{root / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    v = Venv(root, env)
    v.run("python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          "--no-index", "--find-links", str(wheelhouse()), str(dist / wheel_name()))
    return v


def test_the_installed_bindrop_is_the_wheels_not_the_checkouts(venv: Venv) -> None:
    where = venv.run("python", "-c", "import bindrop; print(bindrop.__file__)").stdout.strip()
    assert where.startswith(str(venv.root)), where
    assert not where.startswith(str(CHECKOUT))
    version = venv.run("bindrop", "--version").stdout
    assert version.startswith(f"bindrop {bindrop.__version__}")
    # Built from a checkout: the commit travels in the wheel.
    assert "(commit " in version or not (CHECKOUT / ".git").exists()


def test_an_installed_bindrop_packs_itself_again_for_server_setup(venv: Venv, dist: Path,
                                                                  tmp_path: Path) -> None:
    venv.run("python", "-c", "import sys; from pathlib import Path; "
             "from bindrop.moving.wheel import build_wheel; build_wheel(Path(sys.argv[1]))",
             str(tmp_path))
    with zipfile.ZipFile(tmp_path / wheel_name()) as a, \
            zipfile.ZipFile(dist / wheel_name()) as b:
        assert set(a.namelist()) == set(b.namelist())
        for name in b.namelist():
            if not name.endswith("RECORD"):
                assert a.read(name) == b.read(name), name


@dataclass
class Server:
    venv: Venv
    name: str
    machines: Path
    env: dict[str, str]

    def bindrop(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(self.venv.root / "bin" / "bindrop"), *args], env=self.env,
                              cwd=self.venv.root.parent, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, check=False, timeout=600)
        assert proc.returncode == 0 or not check, (args, proc.stdout, proc.stderr)
        return proc


@pytest.fixture(scope="module")
def server(venv: Venv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A full machine (hub, proxy, dashboard) booted and installed by the wheel's bindrop."""
    machines = tmp_path_factory.mktemp("machines")
    name = f"pkg-{os.getpid()}"
    s = Server(venv, name, machines, dict(venv.env))
    try:
        s.bindrop("machine", "up", "--name", name, "--machines-dir", str(machines))
        for line in s.bindrop("machine", "env", "--name", name, "--machines-dir",
                              str(machines)).stdout.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            if key.startswith("BINDROP_"):
                s.env[key] = value.strip("'\"")
        yield s
    finally:
        s.bindrop("machine", "down", "--name", name, "--machines-dir", str(machines),
                  "--purge", check=False)


def _get(url: str, host: str, path: str) -> tuple[int, bytes]:
    return get_from("127.0.0.1", int(url.rsplit(":", 1)[1].rstrip("/")), host, path)


def test_a_wheel_install_runs_a_whole_server(server: Server, tmp_path: Path) -> None:
    # The units run the wheel's interpreter, and install said so.
    unit = subprocess.run([str(server.venv.root / "bin" / "bindrop"), "machine", "shell",
                           "--name", server.name, "--machines-dir", str(server.machines), "--",
                           "systemctl", "cat", "bindrop.service"], env=server.env,
                          capture_output=True, text=True, check=True, timeout=120).stdout
    assert f"{server.venv.root}/bin/python" in unit
    assert str(CHECKOUT) not in unit
    info = json.loads(subprocess.run(
        [str(server.venv.root / "bin" / "bindrop"), "machine", "shell", "--name", server.name,
         "--machines-dir", str(server.machines), "--", "curl", "-s", "--unix-socket",
         "/run/bindrop/control.sock", "http://hub/v1/server"], env=server.env,
        capture_output=True, text=True, check=True, timeout=120).stdout)
    assert info["version"] == bindrop.__version__
    assert info["commit"] == build_commit()  # the checkout's, carried by the wheel
    # install put the wheel's bindrop where an ssh:// session looks (sshd's default PATH)
    found = subprocess.run(
        [str(server.venv.root / "bin" / "bindrop"), "machine", "shell", "--name", server.name,
         "--machines-dir", str(server.machines), "--", "env", "PATH=/usr/local/bin:/usr/bin:/bin",
         "sh", "-c", "command -v bindrop && readlink /usr/local/bin/bindrop && bindrop --version"],
        env=server.env, capture_output=True, text=True, check=True, timeout=120).stdout.split("\n")
    assert found[:2] == ["/usr/local/bin/bindrop", f"{server.venv.root}/bin/bindrop"], found
    assert bindrop.__version__ in found[2], found

    app = tmp_path / "hello.py"
    shutil.copy(HELLO, app)
    server.bindrop("create", "hello", "--host", "hello.localhost")
    try:
        server.bindrop("deploy", "hello", str(app), "--cmd", "--label wheel")
        status, body = _get(server.env["BINDROP_HTTP_URL"], "hello.localhost", "/")
        assert status == 200 and b"wheel from hello release 1" in body, body
        status, body = _get(server.env["BINDROP_HTTP_URL"], "dashboard.localhost", "/login")
        assert status == 200 and b"token" in body.lower(), body[:200]
        # A bundle, unpacked by the hub on the install's own Python (Debian's 3.11.2 here).
        server.bindrop("deploy", "hello", str(_bundle(tmp_path / "hello.tar.gz")))
        status, body = _get(server.env["BINDROP_HTTP_URL"], "hello.localhost", "/")
        assert status == 200 and b"bundled from hello release 2" in body, body
    finally:
        server.bindrop("destroy", "hello", "--yes", check=False)


def _bundle(path: Path) -> Path:
    """hello.py in a .tar.gz with a Procfile, as a user packs an app."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data, mode in (("hello.py", HELLO.read_bytes(), 0o755),
                                 ("Procfile", b"web: ./hello.py --label bundled\n", 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return path
