"""The pure parts of moving a server: probes, DNS records, ssh argv, bootstrap's report, the
wheel and a machine's network plan (#9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bindrop.errors import BindropError, InvalidInput
from bindrop.machine.layout import MachineLayout, render_boot_script
from bindrop.machine.network import MachineNet, plan_set_up, plan_tear_down
from bindrop.moving.migrate import DnsRecord, dns_records
from bindrop.moving.readiness import Probe, is_served, plan_probes, wait_until_served
from bindrop.moving.remote import Remote
from bindrop.moving.setup import SetupResult, parse_bootstrap_output


def test_each_host_of_an_app_is_probed_at_its_prefix_and_health_path() -> None:
    assert plan_probes("blog", ["blog.example.com", "example.com/blog", "*.example.com"],
                       "/up") == [Probe("blog", "blog.example.com", "/up"),
                                  Probe("blog", "example.com", "/blog/up")]
    assert plan_probes("web", ["web.test"], None) == [Probe("web", "web.test", "/")]


@pytest.mark.parametrize(("status", "body", "served"), [
    (200, b"hello", True),
    (404, b"the app's own not found", True),
    (401, b"the app wants a login", True),
    (500, b"500 Internal Server Error\n\nServer got itself in trouble", False),
    (404, b"<h1>No app answers on blog.test</h1>", False),
    (502, b"", False),
    (503, b"blog is starting", False),
])
def test_only_an_answer_from_the_app_counts_as_served(status: int, body: bytes,
                                                      served: bool) -> None:
    assert is_served(status, body) is served


def test_waiting_reports_per_app_whether_every_host_answered() -> None:
    probes = [Probe("a", "a.test", "/"), Probe("b", "b.test", "/"), Probe("b", "c.test", "/")]
    answers = {"a.test": [False, True], "b.test": [True], "c.test": [False] * 100}

    def ask(_address: str, _port: int, probe: Probe) -> bool:
        seq = answers[probe.host]
        return seq.pop(0) if len(seq) > 1 else seq[0]

    assert wait_until_served("10.0.0.2", 80, probes, timeout=1.0, ask_one=ask) == {
        "a": True, "b": False}


def test_dns_records_name_each_host_once_without_its_path() -> None:
    assert dns_records(["b.test", "a.test/api", "a.test"], "10.77.0.3") == [
        DnsRecord("a.test", "A", "10.77.0.3"), DnsRecord("b.test", "A", "10.77.0.3")]
    assert dns_records(["a.test"], "fd00::3")[0].type == "AAAA"


def test_a_remote_runs_bindrop_over_ssh_with_the_users_ssh_command() -> None:
    r = Remote.of("ssh://root@10.77.0.3:2222", ["ssh", "-i", "key"], ["/opt/bindrop/bin/bindrop"])
    assert r.bindrop_argv("server", "import", "-") == [
        "ssh", "-i", "key", "-T", "-o", "BatchMode=yes", "-p", "2222", "--", "root@10.77.0.3",
        "/opt/bindrop/bin/bindrop server import -"]
    assert Remote.of("unix:/run/bindrop/control.sock").is_local


def test_moving_refuses_an_http_server() -> None:
    with pytest.raises(InvalidInput, match="ssh://"):
        Remote.of("https://bindrop.example.com")


def test_bootstraps_last_lines_say_which_token() -> None:
    assert parse_bootstrap_output("x\nBINDROP_TOKEN=abc\n") == SetupResult("abc", None)
    assert parse_bootstrap_output("BINDROP_TOKEN_EXISTS=admin\n") == SetupResult(None, "admin")
    with pytest.raises(BindropError):
        parse_bootstrap_output("something went wrong\n")


def test_a_machine_network_plan_bridges_a_veth_into_its_namespace() -> None:
    net = MachineNet.parse("mig-a", "10.77.0.2")
    steps = plan_set_up(net, bridge_exists=False)
    assert steps[0] == ["link", "add", net.bridge, "type", "bridge"]
    assert ["addr", "add", "10.77.0.1/24", "dev", net.bridge] in steps
    assert ["-n", "bindrop-mig-a", "addr", "add", "10.77.0.2/24", "dev", "eth0"] in steps
    assert plan_set_up(net, bridge_exists=True)[0] == ["netns", "add", "bindrop-mig-a"]
    assert len(net.host_veth) <= 15 and len(net.peer_veth) <= 15 and len(net.bridge) <= 15
    # The bridge goes with the last machine on it.
    assert ["link", "del", net.bridge] in plan_tear_down(net, [net.host_veth])
    assert ["link", "del", net.bridge] not in plan_tear_down(net, [net.host_veth, "bdother"])


@pytest.mark.parametrize("text", ["10.77.0.1/24", "10.77.0.0/24", "8.8.8.8", "nonsense",
                                  "10.0.0.2/31"])
def test_a_machine_address_must_be_private_and_its_own(text: str) -> None:
    with pytest.raises(InvalidInput):
        MachineNet.parse("m", text)


def test_a_machine_with_a_network_boots_inside_its_namespace(tmp_path: Path) -> None:
    layout = MachineLayout("mig-a", tmp_path / "mig-a")
    script = render_boot_script(layout, [], netns="/run/netns/bindrop-mig-a")
    assert "exec nsenter --net=/run/netns/bindrop-mig-a unshare --pid" in script
    assert "exec unshare --pid" in render_boot_script(layout, [])
