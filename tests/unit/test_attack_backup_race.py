"""An app swapping its database for a symlink to another app's (or bindrop's) database while
a backup runs must not get that database into its own backup (and so, by a restore, into its
data). The backup runs as root; the app controls its data directory.

The swap races the backup on purpose: before the fix the victim's rows were in the app's
backup within a few rounds; now no round may have them."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tarfile
import threading
import time
from pathlib import Path

from bindrop.care.archive import write_archive

ROUNDS = 40


def make_db(path: Path, text: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.execute("INSERT INTO t VALUES (?)", [text])
    conn.commit()
    conn.close()


def test_a_database_swapped_for_a_symlink_during_a_backup_never_brings_in_its_target(
        tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    make_db(victim / "app.db", "TOPSECRET-victim-row")
    data = tmp_path / "data"
    data.mkdir()
    for i in range(200):  # files archived before the database: a longer window
        (data / f"a{i:03}.txt").write_text("x")
    make_db(data / "zz.db", "mine")
    os.link(data / "zz.db", tmp_path / "keep.db")
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                os.symlink(victim / "app.db", data / "link.tmp")
                os.replace(data / "link.tmp", data / "zz.db")
                time.sleep(0.0003)
                os.link(tmp_path / "keep.db", data / "real.tmp")
                os.replace(data / "real.tmp", data / "zz.db")
                time.sleep(0.0003)

    swapper = threading.Thread(target=swap)
    swapper.start()
    leaked = []
    try:
        for n in range(ROUNDS):
            staging = tmp_path / f"staging{n}"
            staging.mkdir()
            target = tmp_path / f"part{n}.tar.gz"
            with contextlib.suppress(Exception):
                write_archive(data, target, staging)
            if not target.exists():
                continue
            with contextlib.suppress(tarfile.TarError, EOFError, OSError), \
                    tarfile.open(target) as tar:
                for member in tar.getmembers():
                    f = tar.extractfile(member) if member.isfile() else None
                    if f is not None and b"TOPSECRET" in f.read():
                        leaked.append((n, member.name))
    finally:
        stop.set()
        swapper.join()
    assert leaked == []
