"""bindrop install's unit rendering: ports, the HTTPS socket on or off, nothing left over."""

from __future__ import annotations

import re

import pytest

from bindrop.cli.install import UNITS, deploy_dir, installed_units, render_installed_unit


def render(name: str, https_port: int | None) -> str:
    return render_installed_unit((deploy_dir() / name).read_text(), "/opt/bindrop/bin/bindrop",
                                 8080, 7300, "bindrop.example.com", https_port)


@pytest.mark.parametrize("name", UNITS)
def test_every_placeholder_is_filled(name: str) -> None:
    assert re.findall(r"@[A-Z_]+@", render(name, 8443)) == []


def test_the_proxy_takes_both_sockets_when_https_is_on() -> None:
    service = render("bindrop-proxy.service", 8443)
    assert "\nSockets=bindrop-proxy.socket bindrop-proxy-https.socket\n" in service
    assert "\nListenStream=8443\n" in render("bindrop-proxy-https.socket", 8443)
    assert "\nFileDescriptorName=https\n" in render("bindrop-proxy-https.socket", 8443)
    assert "\nListenStream=8080\n" in render("bindrop-proxy.socket", 8443)


def test_with_https_off_there_is_no_https_socket_anywhere() -> None:
    assert "bindrop-proxy-https.socket" not in installed_units(None)
    service = render("bindrop-proxy.service", None)
    assert "bindrop-proxy-https" not in service
    assert "\nSockets=bindrop-proxy.socket\n" in service
    assert installed_units(443)[-1] == "bindrop-proxy.service"  # started after its sockets
