"""The alerts webhook as an attacker (or a slip of the keyboard) would set it: only http(s)
URLs a client can actually reach are taken, each refusal a clear InvalidInput. Pure."""

from __future__ import annotations

import pytest

from bindrop.errors import InvalidInput
from bindrop.store.alerts import parse_webhook_url


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "ftp://h/x", "javascript:alert(1)", "gopher://127.0.0.1:6379/_x",
    "unix:/run/bindrop/control.sock", "http:///nohost", "http://h/x y", "http://h/\r\nX: 1",
    "http://u:secret@[::1/",            # urlsplit's ValueError: was a 500
    "http://h:0/",
    "http://u:secret@127.0.0.1:99999/",  # no such port: deliveries failed, URL in the log
    "http://u:secret@host:abc/",
    "http://u:secret@\u00e9xample..com/",  # not a host name at all
    "http://h/\x00", "http://h/\x7f",
])
def test_a_webhook_that_is_not_a_reachable_http_url_is_refused_as_invalid_input(
        url: str) -> None:
    with pytest.raises(InvalidInput):
        parse_webhook_url(url)


def test_the_refusal_does_not_repeat_the_credentials_of_the_url() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_webhook_url("ftp://ops:hunter2@h/x")
    assert "hunter2" not in refused.value.message


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "https://hooks.example.com/services/T0/B0/xyz",
    "https://user:pass@example.com/h?x=1", "http://[::1]:9/x", "https://\u00e9xample.com/",
])
def test_an_http_or_https_url_is_taken_as_given(url: str) -> None:
    assert parse_webhook_url(url) == url
