#!/usr/bin/python3
"""A test app for server care: keeps writing its SQLite database, or runs as a cron job.

``serve [--until N]``: answers TCP on $PORT (readiness) and inserts rows into
$STATE_DIRECTORY/app.db (WAL mode), two per transaction, until the table holds N rows (0:
forever). ``job SECONDS``: appends "start <t>" and "end <t>" lines to
$STATE_DIRECTORY/cron.log around a sleep, so overlapping runs show in the log.
"""

import asyncio
import os
import sqlite3
import sys
import time
from pathlib import Path

DATA = Path(os.environ.get("STATE_DIRECTORY", "."))


async def serve(until: int) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1",
                                        int(os.environ["PORT"]))
    conn = sqlite3.connect(DATA / "app.db", isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    n = conn.execute("SELECT count(*) FROM t").fetchone()[0]
    async with server:
        while until == 0 or n < until:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (v) VALUES (?)", (f"a{n}" + "x" * 500,))
            conn.execute("INSERT INTO t (v) VALUES (?)", (f"b{n}" + "y" * 500,))
            conn.execute("COMMIT")
            n += 2
            await asyncio.sleep(0.002)
        await asyncio.Event().wait()


def job(seconds: float) -> None:
    with (DATA / "cron.log").open("a") as log:
        log.write(f"start {time.time():.3f}\n")
        log.flush()
        time.sleep(seconds)
        log.write(f"end {time.time():.3f}\n")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(serve(int(sys.argv[3]) if len(sys.argv) > 3 else 0))
    else:
        job(float(sys.argv[2]))
