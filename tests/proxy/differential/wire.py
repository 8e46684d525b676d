"""HTTP/1.1 as an app and a visitor read it: strict parsers that say what they saw. Pure.

``parse_request`` is the recording upstream's reading of what a proxy forwarded: the
framing it decides (Content-Length or chunked, nothing else), the body an app would read,
and every anomaly that a proxy should never have let through (bare LF, obs-fold, two
lengths, a length next to chunked, control bytes...). ``parse_answers`` is the visitor's
reading of what a proxy answered: 1xx interim answers, final answers with their bodies, and
whatever is left over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

Headers = tuple[tuple[bytes, bytes], ...]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP/(\d)\.(\d)")
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: ([^\r\n]*))?")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
#: Bytes no field value may carry on to an app (other control bytes pass, as in nginx).
_CTL = re.compile(rb"[\x00\r\n]")


class Incomplete(Exception):
    """More bytes are needed."""


@dataclass(frozen=True)
class ParsedRequest:
    method: str
    target: str
    version: str
    headers: Headers
    body: bytes
    framing: str  # "length", "chunked" or "none"
    trailers: Headers
    anomalies: tuple[str, ...]
    raw: bytes

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def names(self) -> set[bytes]:
        return {k.lower() for k, _ in self.headers}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Headers
    body: bytes
    #: False when the connection ended before the body did.
    complete: bool = True

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name]


@dataclass
class Answers:
    interim: list[Answer] = field(default_factory=list)
    final: list[Answer] = field(default_factory=list)
    #: Bytes that are not an answer (after the last one parsed).
    rest: bytes = b""
    problems: list[str] = field(default_factory=list)


def _split_head(data: bytes) -> tuple[bytes, bytes] | None:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    return data[:end], data[end + 4:]


def _parse_fields(lines: list[bytes], anomalies: list[str]) -> Headers:
    out: list[tuple[bytes, bytes]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            anomalies.append("obs-fold")
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            anomalies.append(f"bad header line {line[:40]!r}")
            continue
        value = value.strip(b" \t")
        if _CTL.search(value):
            anomalies.append(f"control byte in {name.decode()}")
        out.append((name, value))
    return tuple(out)


def parse_request(data: bytes) -> tuple[ParsedRequest, bytes]:
    """The first request in ``data`` and the bytes after it. Raises ``Incomplete``; a head it
    cannot read at all is returned with the anomaly ``unreadable`` and everything consumed."""
    split = _split_head(data)
    if split is None:
        if len(data) > 256 * 1024:
            return _unreadable(data), b""
        raise Incomplete
    head, rest = split
    anomalies: list[str] = []
    if b"\n" in head.replace(b"\r\n", b"") or b"\r" in head.replace(b"\r\n", b""):
        anomalies.append("bare CR or LF")
    lines = head.split(b"\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        return _unreadable(data), b""
    method, target = match[1].decode(), match[2].decode("latin-1")
    version = f"{match[3].decode()}.{match[4].decode()}"
    if version != "1.1":
        anomalies.append(f"HTTP/{version} upstream")
    headers = _parse_fields(lines[1:], anomalies)
    lengths = [v for k, v in headers if k.lower() == b"content-length"]
    codings = [v for k, v in headers if k.lower() == b"transfer-encoding"]
    hosts = [v for k, v in headers if k.lower() == b"host"]
    if len(hosts) != 1:
        anomalies.append(f"{len(hosts)} Host headers")
    trailers: Headers = ()
    if codings:
        if lengths:
            anomalies.append("Content-Length and Transfer-Encoding")
        if len(codings) != 1 or codings[0].lower() != b"chunked":
            anomalies.append(f"Transfer-Encoding {codings!r}")
            return _unreadable(data, anomalies), b""
        body, trailers, rest = _dechunk(rest, anomalies)
        framing = "chunked"
    elif lengths:
        if len(lengths) > 1:
            anomalies.append(f"{len(lengths)} Content-Length headers")
        if len(set(lengths)) != 1 or not lengths[0].isdigit() or len(lengths[0]) > 15:
            anomalies.append(f"Content-Length {lengths!r}")
            return _unreadable(data, anomalies), b""
        size = int(lengths[0])
        if len(rest) < size:
            raise Incomplete
        body, rest = rest[:size], rest[size:]
        framing = "length"
    else:
        body, framing = b"", "none"
    raw = data[:len(data) - len(rest)]
    return ParsedRequest(method, target, version, headers, body, framing, trailers,
                         tuple(anomalies), raw), rest


def _unreadable(data: bytes, anomalies: list[str] | None = None) -> ParsedRequest:
    return ParsedRequest("", "", "", (), b"", "none", (),
                         ("unreadable", *(anomalies or ())), data)


def _dechunk(data: bytes, anomalies: list[str]) -> tuple[bytes, Headers, bytes]:
    """A chunked body: (body, trailers, rest). Raises Incomplete."""
    body = bytearray()
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            raise Incomplete
        size_line = data[pos:end]
        size_text, _, extension = size_line.partition(b";")
        if extension:
            anomalies.append("chunk extension")
        size_text = size_text.rstrip(b" \t")
        if not _HEX.fullmatch(size_text):
            anomalies.append(f"chunk size {size_line[:30]!r}")
            return bytes(body), (), b""
        size = int(size_text, 16)
        pos = end + 2
        if size == 0:
            break
        if len(data) < pos + size + 2:
            raise Incomplete
        body += data[pos:pos + size]
        if data[pos + size:pos + size + 2] != b"\r\n":
            anomalies.append("chunk not followed by CRLF")
            return bytes(body), (), b""
        pos += size + 2
    trailer_end = data.find(b"\r\n", pos)
    if trailer_end < 0:
        raise Incomplete
    if trailer_end == pos:
        return bytes(body), (), data[pos + 2:]
    end = data.find(b"\r\n\r\n", pos)
    if end < 0:
        raise Incomplete
    trailers = _parse_fields(data[pos:end].split(b"\r\n"), anomalies)
    return bytes(body), trailers, data[end + 4:]


def parse_answers(data: bytes, methods: list[str], *, closed: bool) -> Answers:
    """The answers in ``data`` to requests with ``methods`` (in order; HEAD has no body).
    ``closed``: the connection ended after ``data`` (a body with no length ends there)."""
    out = Answers()
    while data:
        split = _split_head(data)
        if split is None:
            out.rest = data
            if closed or not data.startswith(b"HTTP/"):
                out.problems.append(f"not an answer: {data[:60]!r}")
            return out
        head, rest = split
        lines = head.split(b"\r\n")
        match = _STATUS_LINE.fullmatch(lines[0])
        anomalies: list[str] = []
        if match is None:
            out.rest = data
            out.problems.append(f"not a status line: {lines[0][:60]!r}")
            return out
        headers = _parse_fields(lines[1:], anomalies)
        out.problems.extend(anomalies)
        status = int(match[3])
        if 100 <= status < 200 and status != 101:
            out.interim.append(Answer(status, headers, b""))
            data = rest
            continue
        method = methods[len(out.final)] if len(out.final) < len(methods) else "GET"
        lengths = [v for k, v in headers if k.lower() == b"content-length"]
        chunked = any(v.lower() == b"chunked" for k, v in headers
                      if k.lower() == b"transfer-encoding")
        if len(lengths) > 1:
            out.problems.append(f"{len(lengths)} Content-Length headers in a {status}")
        if method == "HEAD" or status in (101, 204, 304):
            body, complete, data = b"", True, (b"" if status == 101 else rest)
        elif chunked:
            try:
                body, _, data = _dechunk(rest, out.problems)
                complete = True
            except Incomplete:
                body, complete, data = rest, False, b""
        elif lengths and lengths[0].isdigit():
            size = int(lengths[0])
            body, data = rest[:size], rest[size:]
            complete = len(body) == size
        else:
            body, complete, data = rest, closed, b""
        out.final.append(Answer(status, headers, body, complete))
        if status == 101:
            break
    return out
