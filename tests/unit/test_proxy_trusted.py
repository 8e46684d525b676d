"""Trusted proxies (issue 13): parsed, matched, kept in the installed proxy unit."""

from __future__ import annotations

import pytest

from bindrop.errors import InvalidInput
from bindrop.proxy.trusted import TrustedProxies, parse_trusted_proxies
from bindrop.serve.install import deploy_dir, render_installed_unit
from bindrop.settings import Settings


def test_trusted_proxies_parse_networks_and_single_addresses() -> None:
    nets = parse_trusted_proxies("10.0.0.0/8, 192.0.2.7,2001:db8::/32")
    assert [str(n) for n in nets] == ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]
    assert parse_trusted_proxies("") == ()


def test_a_trusted_proxy_that_is_not_a_network_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not an address"):
        parse_trusted_proxies("10.0.0.0/8,example.com")


def test_a_peer_is_trusted_only_inside_the_networks_mapped_form_included() -> None:
    trusted = TrustedProxies(parse_trusted_proxies("10.0.0.0/8"))
    assert trusted.peer_is_trusted("10.1.2.3")
    assert trusted.peer_is_trusted("::ffff:10.1.2.3")
    assert not trusted.peer_is_trusted("127.0.0.1")
    assert not trusted.peer_is_trusted(None)
    assert not TrustedProxies().peer_is_trusted("10.1.2.3")


def test_trusted_proxies_come_from_the_environment_into_settings() -> None:
    settings = Settings.from_env({"BINDROP_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1"})
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.0.2.1")
    assert Settings.from_env({}).trusted_proxies == ()


def test_the_installed_proxy_unit_carries_the_trusted_proxies() -> None:
    template = (deploy_dir() / "bindrop-proxy.service").read_text()
    text = render_installed_unit(template, "bindrop", trusted_proxies="10.0.0.0/8")
    assert "Environment=BINDROP_TRUSTED_PROXIES=10.0.0.0/8\n" in text
    assert "Environment=BINDROP_TRUSTED_PROXIES=\n" in render_installed_unit(template, "bindrop")
