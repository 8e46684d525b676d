"""A machine's own network: a network namespace with one address on a host bridge.

    host:  bridge bdbr<net> with the network's first address (10.77.0.1/24)
             └── veth bd<machine>  <──>  eth0 in netns bindrop-<machine>: 10.77.0.2/24
                                         lo up, default route via 10.77.0.1

Machines given addresses on one network share one bridge, so they reach each other and the
host reaches them all; each listens on its own port 80 and 22 without clashing. Plans are
pure (``plan_*`` return ``ip`` argument lists); ``set_up`` and ``tear_down`` run them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from bindrop.errors import InvalidInput, MachineError

IP = "ip"


@dataclass(frozen=True)
class MachineNet:
    """A machine's place on a network, from ``ADDR[/PREFIX]`` (prefix 24 when left out)."""

    machine: str
    interface: ipaddress.IPv4Interface

    @classmethod
    def parse(cls, machine: str, text: str) -> MachineNet:
        try:
            iface = ipaddress.IPv4Interface(text if "/" in text else f"{text}/24")
        except ValueError:
            raise InvalidInput(f"--net {text!r} is not valid: use an IPv4 address with an "
                               "optional prefix, such as 10.77.0.2/24") from None
        net = iface.network
        if net.prefixlen > 30 or iface.ip in (net.network_address, net.broadcast_address,
                                             _gateway(net)):
            raise InvalidInput(f"--net {text!r}: the machine needs an address of its own in "
                               f"{net} other than {_gateway(net)} (the host's)")
        if not iface.ip.is_private:
            raise InvalidInput(f"--net {text!r}: use a private address (10.x, 192.168.x)")
        return cls(machine, iface)

    @property
    def address(self) -> str:
        return str(self.interface.ip)

    @property
    def gateway(self) -> str:
        return str(_gateway(self.interface.network))

    @property
    def netns(self) -> str:
        return f"bindrop-{self.machine}"

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"

    @property
    def bridge(self) -> str:
        return "bdbr" + _short(str(self.interface.network), 6)

    @property
    def host_veth(self) -> str:
        return "bd" + _short(self.machine, 8)

    @property
    def peer_veth(self) -> str:
        return self.host_veth + "p"


def _gateway(net: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    return net.network_address + 1


def _short(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def plan_set_up(net: MachineNet, bridge_exists: bool) -> list[list[str]]:
    """The ``ip`` commands that give the machine its namespace, veth and addresses. Pure."""
    prefix = net.interface.network.prefixlen
    steps = []
    if not bridge_exists:
        steps += [
            ["link", "add", net.bridge, "type", "bridge"],
            ["addr", "add", f"{net.gateway}/{prefix}", "dev", net.bridge],
            ["link", "set", net.bridge, "up"],
        ]
    ns = ["-n", net.netns]
    steps += [
        ["netns", "add", net.netns],
        ["link", "add", net.host_veth, "type", "veth", "peer", "name", net.peer_veth],
        ["link", "set", net.peer_veth, "netns", net.netns],
        ["link", "set", net.host_veth, "master", net.bridge],
        ["link", "set", net.host_veth, "up"],
        [*ns, "link", "set", net.peer_veth, "name", "eth0"],
        [*ns, "addr", "add", str(net.interface), "dev", "eth0"],
        [*ns, "link", "set", "eth0", "up"],
        [*ns, "link", "set", "lo", "up"],
        [*ns, "route", "add", "default", "via", net.gateway],
    ]
    return steps


def plan_tear_down(net: MachineNet, bridge_ports_left: Sequence[str]) -> list[list[str]]:
    """Undo ``plan_set_up``: the veth (both ends go together), the namespace, and the bridge
    when no other machine is on it. Pure."""
    steps = [["link", "del", net.host_veth], ["netns", "del", net.netns]]
    if not [p for p in bridge_ports_left if p != net.host_veth]:
        steps.append(["link", "del", net.bridge])
    return steps


def set_up(net: MachineNet) -> None:
    """Create the machine's network (after removing leftovers of an earlier boot)."""
    tear_down(net)
    for step in plan_set_up(net, _link_exists(net.bridge)):
        _ip(step)


def tear_down(net: MachineNet) -> None:
    """Remove the machine's network; what is not there is skipped."""
    for step in plan_tear_down(net, _bridge_ports(net.bridge)):
        _ip(step, check=False)


def _link_exists(name: str) -> bool:
    return _ip(["link", "show", name], check=False).returncode == 0


def _bridge_ports(bridge: str) -> list[str]:
    proc = _ip(["-o", "link", "show", "master", bridge], check=False)
    return [line.split(":")[1].strip().split("@")[0] for line in proc.stdout.splitlines()
            if line.count(":") >= 2]


def _ip(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run([IP, *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise MachineError("`ip` is missing: apt-get install iproute2") from None
    if check and proc.returncode != 0:
        raise MachineError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc
