"""An app that records the raw bytes the proxy sends and answers with scripted raw bytes.

Answers are picked by the request's path; each is written in one piece (one packet), so a
test controls exactly what the proxy's upstream parser sees at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bindrop.proxy.listen import bind_socket

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@dataclass
class RawApp:
    answers: dict[bytes, bytes] = field(default_factory=dict)
    #: Every request head received, as bytes, in order.
    heads: list[bytes] = field(default_factory=list)
    #: Every request body received (by its Content-Length), in order.
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    server: asyncio.Server | None = None

    async def start(self) -> RawApp:
        self.server = await asyncio.start_server(self._serve, sock=bind_socket("127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                self.bodies.append(await reader.readexactly(length) if length else b"")
                path = head.split(b" ")[1]
                writer.write(self.answers.get(path, OK))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
