"""bindrop's dependencies as wheels, for installs that must not reach the package index
(machines have no network; a fresh virtualenv should not wait on it)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bindrop.moving.wheel import requirements


def wheelhouse() -> Path:
    """bindrop's dependencies as wheels, downloaded once into the user's cache."""
    wanted = sorted(requirements())
    key = hashlib.sha256("\n".join(wanted).encode()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = cache / "bindrop-tests" / f"wheelhouse-{key}"
    if not (target / "complete").exists():
        target.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                               "--only-binary=:all:", "-d", str(target), *wanted],
                              capture_output=True, text=True, check=False, timeout=300)
        if proc.returncode != 0:
            reason = f"cannot download bindrop's dependencies: {proc.stderr[-500:]}"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        (target / "complete").write_text("")
    return target
