"""Socket activation: which fds systemd passed, and parsing --listen."""

from __future__ import annotations

import pytest

from bindrop.errors import InvalidInput
from bindrop.proxy.listen import parse_listen_fds
from bindrop.serve.proxy import parse_listen


@pytest.mark.parametrize(("environ", "fds"), [
    ({"LISTEN_PID": "42", "LISTEN_FDS": "1"}, [3]),
    ({"LISTEN_PID": "42", "LISTEN_FDS": "2"}, [3, 4]),
    ({"LISTEN_PID": "41", "LISTEN_FDS": "1"}, []),  # meant for another process
    ({"LISTEN_FDS": "1"}, []),
    ({"LISTEN_PID": "42", "LISTEN_FDS": "x"}, []),
    ({}, []),
])
def test_sockets_are_taken_only_when_systemd_passed_them_to_this_process(
        environ: dict[str, str], fds: list[int]) -> None:
    assert parse_listen_fds(environ, 42) == fds


@pytest.mark.parametrize(("text", "pair"), [
    ("0.0.0.0:80", ("0.0.0.0", 80)), ("127.0.0.1:0", ("127.0.0.1", 0)),
    ("[::]:8080", ("::", 8080)), (":80", ("0.0.0.0", 80)),
])
def test_listen_is_host_and_port(text: str, pair: tuple[str, int]) -> None:
    assert parse_listen(text) == pair


@pytest.mark.parametrize("text", ["80", "host:", "host:http", "a:70000"])
def test_a_bad_listen_address_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_listen(text)
