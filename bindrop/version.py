"""Which bindrop this is: the version (one place: ``bindrop.__version__``) and the git commit
it was built from, when it was built from a checkout.

A wheel built from a checkout carries the commit in ``bindrop/BUILD_COMMIT`` (written by
``setup.py`` at build time); an editable install or a checkout asks git. An install from an
sdist or a package index has no commit.
"""

from __future__ import annotations

import functools
import subprocess
from importlib import resources
from pathlib import Path

from bindrop import __version__

COMMIT_FILE = "BUILD_COMMIT"


@functools.cache
def build_commit() -> str | None:
    """The git commit this bindrop was built from, or None (cached: read once a process)."""
    try:
        text = (resources.files("bindrop") / COMMIT_FILE).read_text().strip()
    except (FileNotFoundError, NotADirectoryError, OSError):
        text = ""
    return text or _checkout_commit(Path(__file__).resolve().parent.parent)


def _checkout_commit(root: Path) -> str | None:
    if not (root / ".git").exists() or not (root / "pyproject.toml").is_file():
        return None
    try:
        proc = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, check=False, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def version_text() -> str:
    """``0.1.0`` or ``0.1.0 (commit 1a2b3c4d5e6f)``: what ``bindrop --version`` prints."""
    commit = build_commit()
    return f"{__version__} (commit {commit})" if commit else __version__
