"""``bindrop server setup``: bootstrap a fresh server over SSH with this very bindrop."""

from __future__ import annotations

import io
import shlex
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bindrop.errors import BindropError, InvalidInput
from bindrop.moving.places import HUB_UNIT
from bindrop.moving.remote import Remote
from bindrop.moving.wheel import build_wheel, deploy_files

#: Where the wheel and the script land on the server (kept: running the script there again
#: with the same wheel is a no-op; the next setup replaces the folder).
REMOTE_DIR = "/var/tmp/bindrop-setup"
BOOTSTRAP = "bootstrap.sh"


@dataclass(frozen=True)
class SetupResult:
    #: The first admin token, when this run minted it (shown only now).
    token: str | None
    #: The name of the admin token that existed already, when none was minted.
    existing_token: str | None


def parse_bootstrap_output(stdout: str) -> SetupResult:
    """The token lines bootstrap.sh ends with. Pure; ``BindropError`` if there are none."""
    token = existing = None
    for line in stdout.splitlines():
        key, _, value = line.strip().partition("=")
        if key == "BINDROP_TOKEN" and value:
            token = value
        elif key == "BINDROP_TOKEN_EXISTS" and value:
            existing = value
    if token is None and existing is None:
        raise BindropError("bootstrap.sh ended without reporting a token; see its output above")
    return SetupResult(token, existing)


def is_set_up(target: Remote) -> bool:
    """Whether bindrop is installed there: its hub's unit exists and ``bindrop`` runs."""
    probe = (f"systemctl cat {HUB_UNIT} >/dev/null 2>&1 && "
             f"{shlex.join([*target.bindrop, '--version'])} >/dev/null 2>&1")
    proc = subprocess.run(target.shell_argv(probe), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False, timeout=60)
    return proc.returncode == 0


def set_up_server(target: Remote, *, wheelhouse: Path | None = None, offline: bool = False,
                  install_args: Sequence[str] = ()) -> SetupResult:
    """Copy a wheel of this bindrop, bootstrap.sh (and ``wheelhouse``'s wheels) to the server,
    run the script there, and return the token it reports. Its progress goes to stderr."""
    if target.is_local:
        raise InvalidInput("setup works over SSH: give ssh://root@host (on the server itself, "
                           "run bindrop/deploy/bootstrap.sh)")
    script = (deploy_files() / BOOTSTRAP).read_bytes()
    with tempfile.TemporaryDirectory(prefix="bindrop-setup-") as tmp:
        wheel = build_wheel(Path(tmp))
        payload = io.BytesIO()
        with tarfile.open(fileobj=payload, mode="w") as tar:
            info = tarfile.TarInfo(BOOTSTRAP)
            info.size, info.mode = len(script), 0o755
            tar.addfile(info, io.BytesIO(script))
            tar.add(wheel, wheel.name)
            if wheelhouse is not None:
                for path in sorted(wheelhouse.glob("*.whl")):
                    tar.add(path, f"wheels/{path.name}")
        d = shlex.quote(REMOTE_DIR)
        _run(target.shell_argv(f"rm -rf {d} && mkdir -p {d} && tar -x -C {d}"),
             payload.getvalue(), "copying the wheel to")
    args = ["bash", f"{REMOTE_DIR}/{BOOTSTRAP}", "--wheel", f"{REMOTE_DIR}/{wheel.name}"]
    if wheelhouse is not None:
        args += ["--find-links", f"{REMOTE_DIR}/wheels"]
    if offline:
        args.append("--offline")
    if install_args:
        args += ["--", *install_args]
    out = _run(target.shell_argv(shlex.join(args)), None, "bootstrapping")
    return parse_bootstrap_output(out)


def _run(argv: list[str], stdin: bytes | None, what: str) -> str:
    proc = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, check=False,
                          stdin=None if stdin is not None else subprocess.DEVNULL)
    if proc.returncode != 0:
        raise BindropError(f"{what} the server failed (exit {proc.returncode}); see the "
                           "messages above")
    return proc.stdout.decode(errors="replace")
