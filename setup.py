"""Build hook only (everything else is in pyproject.toml): a wheel built from a git checkout
records the commit it was built from in ``bindrop/BUILD_COMMIT`` (read by bindrop.version)."""

import os
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist


def _commit() -> str:
    if "BINDROP_BUILD_COMMIT" in os.environ:  # a build from a copy of the checkout
        return os.environ["BINDROP_BUILD_COMMIT"]
    here = Path(__file__).resolve().parent
    if not (here / ".git").exists():
        return ""
    try:
        proc = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, check=False, timeout=10)
    except OSError:
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


class BuildPyWithCommit(build_py):
    def run(self) -> None:
        super().run()
        # An sdist carries its BUILD_COMMIT as package data; a checkout has none of its own.
        from_sdist = (Path(__file__).resolve().parent / "bindrop" / "BUILD_COMMIT").exists()
        commit = _commit()
        if commit and not self.editable_mode and not from_sdist:
            (Path(self.build_lib) / "bindrop" / "BUILD_COMMIT").write_text(commit + "\n")


class SdistWithCommit(sdist):
    """The sdist carries the commit too, so a wheel built from it (as `python -m build`
    does) still knows it."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        commit = _commit()
        if commit:
            (Path(base_dir) / "bindrop" / "BUILD_COMMIT").write_text(commit + "\n")


setup(cmdclass={"build_py": BuildPyWithCommit, "sdist": SdistWithCommit})
