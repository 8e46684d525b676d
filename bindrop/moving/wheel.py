"""A wheel of this very bindrop, to install on another server (``bindrop server setup``).

From a source checkout it is built the standard way: ``pip wheel`` on the checkout (setuptools,
from pyproject.toml), with ``SOURCE_DATE_EPOCH`` fixed so that the same files make the same
wheel and bootstrap.sh (which compares sha256 sums) sees nothing to reinstall. From an
installed bindrop (a wheel, pipx, uv: no source at hand) the installed distribution is packed
again from its own RECORD, which lists exactly the files its wheel carried. Either way the
unit templates and bootstrap.sh are package data (``bindrop/deploy/``), never copied in.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import bindrop
from bindrop.errors import BindropError
from bindrop.version import build_commit

NAME = "bindrop"
#: 1980-01-01, the earliest date a zip entry can hold.
REPRODUCIBLE_EPOCH = "315532800"
#: Files an installer adds to a dist-info folder: not part of the wheel.
INSTALLER_FILES = ("INSTALLER", "REQUESTED", "direct_url.json", "RECORD")
#: What a checkout holds besides its source.
NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
              ".*_cache", ".machines", ".test-artifacts")


def deploy_files() -> Traversable:
    """The unit templates and bootstrap.sh, package data of any install."""
    return resources.files(NAME) / "deploy"


def source_root() -> Path | None:
    """The checkout this bindrop runs from (its pyproject.toml names bindrop), or None."""
    root = Path(bindrop.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return None
    project = tomllib.loads(pyproject.read_text()).get("project", {})
    return root if project.get("name") == NAME else None


def requirements() -> list[str]:
    """The runtime requirements: from pyproject.toml in a checkout, else installed metadata."""
    root = source_root()
    if root is not None:
        deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
        return [str(d) for d in deps]
    return [r for r in importlib.metadata.requires(NAME) or [] if "extra ==" not in r]


def wheel_name(version: str = bindrop.__version__) -> str:
    return f"{NAME}-{version}-py3-none-any.whl"


def build_wheel(directory: Path) -> Path:
    """Write ``bindrop-<version>-py3-none-any.whl`` into ``directory``; return its path."""
    root = source_root()
    return _pip_wheel(root, directory) if root is not None else _repack_installed(directory)


def _pip_wheel(root: Path, directory: Path) -> Path:
    # Built from a clean copy: setuptools builds in the tree (build/lib), where files of an
    # earlier build that the checkout no longer has would end up in the wheel.
    commit = build_commit()
    with tempfile.TemporaryDirectory(prefix="bindrop-build-") as tmp:
        tree = Path(tmp) / NAME
        shutil.copytree(root, tree, ignore=shutil.ignore_patterns(*NOT_SOURCE))
        # Without build isolation when setuptools is at hand (no package index needed, as on
        # a laptop offline); pip sets up an isolated one otherwise.
        has_setuptools = importlib.util.find_spec("setuptools") is not None
        isolation = ["--no-build-isolation"] if has_setuptools else []
        env = {**os.environ, "SOURCE_DATE_EPOCH": REPRODUCIBLE_EPOCH, "PIP_NO_INPUT": "1",
               "BINDROP_BUILD_COMMIT": commit or ""}
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                               "--disable-pip-version-check", *isolation, "-w", str(directory),
                               str(tree)], capture_output=True, text=True, env=env, check=False)
    target = directory / wheel_name()
    if proc.returncode != 0 or not target.is_file():
        raise BindropError(f"building a wheel of {root} failed: {proc.stderr.strip()[-800:]}")
    return target


def _repack_installed(directory: Path) -> Path:
    dist = importlib.metadata.distribution(NAME)
    dist_info = f"{NAME}-{dist.version}.dist-info"
    entries: list[tuple[str, bytes]] = []
    for file in sorted(dist.files or [], key=str):
        name = file.as_posix()
        # Console scripts (../../bin/bindrop), bytecode and the installer's own records are
        # made by the installer, not carried by the wheel.
        if (name.startswith("..") or "__pycache__" in name or name.endswith(".pyc")
                or (name.startswith(f"{dist_info}/")
                    and name.rsplit("/", 1)[1] in INSTALLER_FILES)):
            continue
        entries.append((name, Path(str(file.locate())).read_bytes()))
    if not any(n == f"{dist_info}/WHEEL" for n, _ in entries):
        raise BindropError(f"the installed {NAME} has no {dist_info}/WHEEL to pack again; "
                           "run this from a checkout of bindrop or reinstall it from a wheel")
    record: list[str] = []
    target = directory / wheel_name(dist.version)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(_entry(name), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{name},sha256={digest.decode()},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        zf.writestr(_entry(f"{dist_info}/RECORD"), "\n".join(record) + "\n")
    return target


def _entry(name: str) -> zipfile.ZipInfo:
    """A zip entry with a fixed date and mode: the same files make the same wheel."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info
