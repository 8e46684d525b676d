"""A wheel of this very bindrop, built from its files, to install on another server.

``bindrop server setup`` copies it with ``deploy/bootstrap.sh``. Built here rather than with a
build backend so that it works wherever bindrop runs (a source checkout or an installed
wheel) and carries ``deploy/`` (the unit templates and the bootstrap script) inside the
package, where ``bindrop install`` looks first.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import bindrop

NAME = "bindrop"
ENTRY_POINTS = "[console_scripts]\nbindrop = bindrop.cli.main:cli\n"


def package_dir() -> Path:
    return Path(bindrop.__file__).resolve().parent


def deploy_files() -> Path:
    """deploy/ beside the package in a checkout, or inside it in a built wheel."""
    inside = package_dir() / "deploy"
    return inside if inside.is_dir() else package_dir().parent / "deploy"


def requirements() -> list[str]:
    """The runtime requirements: from pyproject.toml in a checkout, else installed metadata."""
    pyproject = package_dir().parent / "pyproject.toml"
    if pyproject.is_file():
        deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
        return [str(d) for d in deps]
    return [r for r in importlib.metadata.requires(NAME) or [] if "extra ==" not in r]


def wheel_name(version: str = bindrop.__version__) -> str:
    return f"{NAME}-{version}-py3-none-any.whl"


def _files() -> Iterator[tuple[str, Path]]:
    root = package_dir()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
            yield f"{NAME}/{rel.as_posix()}", path
    if not (root / "deploy").is_dir():
        for path in sorted(deploy_files().iterdir()):
            if path.is_file():
                yield f"{NAME}/deploy/{path.name}", path


def build_wheel(directory: Path) -> Path:
    """Write ``bindrop-<version>-py3-none-any.whl`` into ``directory``; return its path."""
    version = bindrop.__version__
    dist_info = f"{NAME}-{version}.dist-info"
    metadata = "".join([
        "Metadata-Version: 2.1\n", f"Name: {NAME}\n", f"Version: {version}\n",
        "Requires-Python: >=3.11\n", *(f"Requires-Dist: {r}\n" for r in requirements()),
    ])
    generated = {
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bindrop\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/entry_points.txt": ENTRY_POINTS.encode(),
    }
    record: list[str] = []
    target = directory / wheel_name(version)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        entries = [(name, path.read_bytes()) for name, path in _files()]
        for name, data in [*entries, *generated.items()]:
            zf.writestr(_entry(name), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{name},sha256={digest.decode()},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        zf.writestr(_entry(f"{dist_info}/RECORD"), "\n".join(record) + "\n")
    return target


def _entry(name: str) -> zipfile.ZipInfo:
    """A zip entry with a fixed date and mode: the same files make the same wheel, so
    bootstrap.sh (which compares sha256 sums) sees nothing to reinstall."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info
