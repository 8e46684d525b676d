"""Small pure parts of forwarding: upstream request lines, 503 reasons, access lines."""

from __future__ import annotations

import json

import pytest

from bindrop.client.proxywire import AppRoute
from bindrop.proxy.accesslog import AccessRecord, render_access_line
from bindrop.proxy.forward import describe_unavailable
from bindrop.proxy.upstream import render_request_head


@pytest.mark.parametrize("raw", ["/", "/a/../b", "/a%2Fb?x=%20&y", "/%zz;p?q=/../",
                                 "//double//slash", "/?"])
def test_the_upstream_request_line_keeps_the_raw_path_byte_for_byte(raw: str) -> None:
    head = render_request_head("GET", raw.encode(), [(b"Host", b"web.test")])
    assert head.split(b"\r\n", 1)[0] == f"GET {raw} HTTP/1.1".encode()


@pytest.mark.parametrize(("status", "message", "says"), [
    ("stopped", None, "is not running at the moment"),
    ("crash-looping", None, "keeps crashing"),
    ("restarting", None, "is starting"),
    ("crash-looping", "Down for upgrades until 3pm.", "Down for upgrades until 3pm."),
])
def test_a_503_says_why_and_prefers_the_maintenance_message(
        status: str, message: str | None, says: str) -> None:
    assert says in describe_unavailable(AppRoute("blog", (), status, None, message))


def test_an_access_line_is_one_json_object_with_every_field() -> None:
    line = render_access_line(AccessRecord("GET", "a.test", "/x", 200, 12, 3.14159, "a", "2",
                                           "r1"))
    assert "\n" not in line
    assert json.loads(line) == {"method": "GET", "host": "a.test", "path": "/x", "status": 200,
                                "bytes": 12, "duration_ms": 3.14, "app": "a", "release": "2",
                                "request_id": "r1"}


@pytest.mark.parametrize("record", [
    AccessRecord("GET", "web.test", "/a\"b\\c?\u00e9=\ud83d\ude00", 200, 12, 3.14159, "web", "1",
                 "r-1"),
    AccessRecord("POST", "", "/\udce9\n", 404, 0, 0.0, None, None, "r"),
])
def test_an_access_line_is_what_json_dumps_would_write(record: AccessRecord) -> None:
    expected = json.dumps({
        "method": record.method, "host": record.host, "path": record.path,
        "status": record.status, "bytes": record.bytes,
        "duration_ms": round(record.duration_ms, 2), "app": record.app,
        "release": record.release, "request_id": record.request_id,
    }, separators=(",", ":"))
    assert render_access_line(record) == expected
