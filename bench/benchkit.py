"""What the Python benchmarks share: progress lines, the cleanup on SIGTERM, and the C
program an app runs (compiled with cc when there is one). Imported as ``benchkit``: a
benchmark runs as ``python bench/NAME.py``, with bench/ on sys.path."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HELLO = Path(__file__).resolve().parents[1] / "examples" / "hello" / "hello.py"


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def exit_on_signals() -> None:
    """SIGTERM (timeout(1), a CI runner) and SIGHUP raise SystemExit: the cleanup in
    ``finally`` still runs."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_exit)


def compile_c(workdir: Path, name: str, source: str, *flags: str) -> Path | None:
    """``source`` compiled with cc into ``workdir``/``name``; None (and a line saying why)
    when there is no cc or it fails: the benchmark runs hello.py instead."""
    cc = shutil.which("cc")
    if cc is None:
        return None
    source_file, binary = workdir / f"{name}.c", workdir / name
    source_file.write_text(source)
    proc = subprocess.run([cc, "-O2", "-s", *flags, "-o", str(binary), str(source_file)],
                          capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        return binary
    say(f"cc failed, falling back to hello.py: {proc.stderr.strip()[:300]}")
    return None
