"""The API's settings from the environment: the TCP port (off unless set), the control host,
the upload limit; and how install and a machine pass them on."""

from __future__ import annotations

import pytest

from bindrop.client.servers import parse_server
from bindrop.client.ssh import ssh_argv
from bindrop.errors import InvalidInput
from bindrop.machine.machine import remote_url
from bindrop.serve.install import deploy_dir, render_installed_unit
from bindrop.settings import DEFAULT_UPLOAD_LIMIT, Settings


def test_tcp_is_off_unless_a_port_is_given() -> None:
    assert Settings.from_env({}).api_port is None
    assert Settings.from_env({"BINDROP_API_PORT": "off"}).api_port is None
    assert Settings.from_env({"BINDROP_API_PORT": "7300"}).api_port == 7300


@pytest.mark.parametrize("text", ["http", "70000", "-1", "7300x"])
def test_a_bad_api_port_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="BINDROP_API_PORT"):
        Settings.from_env({"BINDROP_API_PORT": text})


@pytest.mark.parametrize(("text", "size"), [
    (None, DEFAULT_UPLOAD_LIMIT), ("2G", 2 * 1024**3), ("512m", 512 * 1024**2),
    ("1048576", 1048576), ("100MB", 100 * 1024**2),
])
def test_the_upload_limit_reads_sizes(text: str | None, size: int) -> None:
    environ = {} if text is None else {"BINDROP_UPLOAD_LIMIT": text}
    assert Settings.from_env(environ).upload_limit == size


@pytest.mark.parametrize("text", ["0", "lots", "1.5G", "G"])
def test_a_bad_upload_limit_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="BINDROP_UPLOAD_LIMIT"):
        Settings.from_env({"BINDROP_UPLOAD_LIMIT": text})


def test_an_ssh_server_runs_api_stdio_on_the_given_socket() -> None:
    endpoint = parse_server("ssh://root@vps.example.com:2222/srv/x/control.sock")
    argv = ssh_argv(endpoint, ["ssh", "-i", "key"], ["/opt/bindrop/bin/bindrop"])
    assert argv == ["ssh", "-i", "key", "-T", "-o", "BatchMode=yes", "-p", "2222", "--",
                    "root@vps.example.com",
                    "/opt/bindrop/bin/bindrop api-stdio --socket /srv/x/control.sock"]


def test_an_ssh_server_without_a_path_uses_the_server_s_own_socket() -> None:
    argv = ssh_argv(parse_server("ssh://my-vps"))
    assert argv[-2:] == ["my-vps", "bindrop api-stdio"] and "-p" not in argv


def test_a_remote_command_is_quoted_for_the_remote_shell() -> None:
    argv = ssh_argv(parse_server("ssh://h/odd path;rm"), remote=["bindrop"])
    assert argv[-1] == "bindrop api-stdio --socket '/odd path;rm'"


def test_the_control_host_defaults_to_bindrop_localhost_and_is_canonical() -> None:
    assert Settings.from_env({}).control_host == "bindrop.localhost"
    assert Settings.from_env({"BINDROP_CONTROL_HOST": "Bindrop.Example.com"}
                             ).control_host == "bindrop.example.com"


@pytest.mark.parametrize("text", ["http://bindrop.example.com", "bindrop.example.com/api",
                                  "bind rop", "*.example.com", "example.com:8080"])
def test_a_bad_control_host_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="BINDROP_CONTROL_HOST"):
        Settings.from_env({"BINDROP_CONTROL_HOST": text})


def test_install_renders_the_api_port_and_control_host_into_the_hubs_unit() -> None:
    template = (deploy_dir() / "bindrop.service").read_text()
    text = render_installed_unit(template, "/usr/bin/bindrop", 80, 7300, "bd.example.com")
    assert "\nEnvironment=BINDROP_API_PORT=7300\n" in text
    assert "\nEnvironment=BINDROP_CONTROL_HOST=bd.example.com\n" in text
    assert "@" not in text.replace("@BINDROP@", "")
    off = render_installed_unit(template, "/usr/bin/bindrop", 80, None, "bd.example.com")
    assert "\nEnvironment=BINDROP_API_PORT=off\n" in off
    assert Settings.from_env({"BINDROP_API_PORT": "off"}).api_port is None


def test_a_machine_offers_the_control_api_through_its_proxy() -> None:
    assert remote_url("bindrop.localhost", 42659) == "http://bindrop.localhost:42659"
