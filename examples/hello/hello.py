#!/usr/bin/python3
"""bindrop's example app: a tiny HTTP server on $PORT that counts its visitors.

It keeps the count in its data directory ($STATE_DIRECTORY), which every release of the app
shares. Flags make it misbehave on purpose, for tests and demos:
  --fail            exit 1 at once (so does HELLO_FAIL=1 in the environment)
  --listen-after S  wait S seconds before listening
  --crash-after S   exit 1 S seconds after it started listening
  --fail-restarts K exit 1 at once when started again with the same K (its data directory
                    remembers): a crash loop of quick restarts that systemd gives up on
  --hang-after S    stop answering requests S seconds after it started listening
  --label TEXT      say TEXT in every answer (tells releases apart)
and so do some paths: /status/NNN answers with status NNN, /sleep/S answers after S seconds.
"""

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--listen-after", type=float, default=0)
    parser.add_argument("--crash-after", type=float, default=None)
    parser.add_argument("--fail-restarts", metavar="KEY", default=None)
    parser.add_argument("--hang-after", type=float, default=None)
    parser.add_argument("--label", default="hello")
    args = parser.parse_args()
    if args.fail or os.environ.get("HELLO_FAIL") == "1":
        print("hello: failing on purpose", flush=True)
        return 1
    port = int(os.environ.get("PORT", "8080"))
    data = Path(os.environ.get("STATE_DIRECTORY", "."))
    if args.fail_restarts is not None:
        started = data / f".started-{args.fail_restarts}"
        if started.exists():
            print("hello: crashing on purpose, at once (started before)", flush=True)
            return 1
        started.touch()
    counter = data / "visits"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        if args.hang_after is not None and loop.time() - listening_since > args.hang_after:
            await asyncio.sleep(3600)  # hung: accepts, reads, never answers
        path = head.split(b" ", 2)[1].decode("latin-1") if b" " in head else "/"
        if path.startswith("/sleep/"):
            await asyncio.sleep(float(path[7:]))
        status = path[8:11] if path.startswith("/status/") and path[8:11].isdigit() else "200"
        # Two releases overlap during a deploy and share this file: replace it atomically,
        # or one could read it half-written and never answer.
        try:
            visits = int(counter.read_text()) + 1
        except (FileNotFoundError, ValueError):
            visits = 1
        scratch = data / f".visits.{os.getpid()}"
        scratch.write_text(str(visits))
        os.replace(scratch, counter)
        print(f"hello: visit {visits} {path}", flush=True)
        body = f"{args.label} from {os.environ.get('BINDROP_APP', 'hello')} release " \
               f"{os.environ.get('BINDROP_RELEASE', '?')}: visit {visits} ({path})\n".encode()
        instance = (f"{os.environ.get('BINDROP_PROCESS', 'web')}-"
                    f"{os.environ.get('BINDROP_INSTANCE', '1')}").encode()
        writer.write(f"HTTP/1.1 {status} Hello\r\n".encode()
                     + b"Content-Type: text/plain\r\nConnection: close\r\n"
                     + b"X-Instance: " + instance + b"\r\n"
                     + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        try:
            await writer.drain()
        finally:
            writer.close()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if args.listen_after:
        try:
            await asyncio.wait_for(stop.wait(), args.listen_after)
            return 0  # stopped before it ever listened
        except TimeoutError:
            pass
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    listening_since = loop.time()
    print(f"hello: listening on 127.0.0.1:{port}", flush=True)
    if args.crash_after is not None:
        await asyncio.sleep(args.crash_after)
        print("hello: crashing on purpose", flush=True)
        return 1
    async with server:
        await stop.wait()
    print("hello: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
