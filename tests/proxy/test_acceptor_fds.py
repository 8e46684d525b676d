"""Issue 13: out of file descriptors, a visitor gets 503 rather than a stalled accept."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

from .kit import HANG

SERVER = textwrap.dedent("""
    import asyncio, os, resource, socket
    from bindrop.proxy.acceptor import Acceptor

    async def main():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        acceptor = Acceptor(sock, asyncio.Protocol)  # holds every connection open
        acceptor.start()
        await asyncio.sleep(0.1)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (len(os.listdir("/proc/self/fd")) + 3, hard))
        print(sock.getsockname()[1], flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
""")


async def test_a_worker_out_of_file_descriptors_answers_503() -> None:
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        port = int(await asyncio.to_thread(server.stdout.readline))
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(8)]
        answers = []
        async with asyncio.timeout(HANG):
            for reader, _ in conns:
                try:
                    answers.append(await asyncio.wait_for(reader.read(), 3.0))
                except TimeoutError:
                    answers.append(b"")  # accepted and held: the descriptors it took
        for _, writer in conns:
            writer.close()
        assert any(a.startswith(b"HTTP/1.1 503 ") for a in answers)
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
