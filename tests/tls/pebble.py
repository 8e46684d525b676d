"""A real ACME CA for tests: Debian's ``pebble`` with ``pebble-challtestsrv`` as its DNS.

challtestsrv answers every name with 127.0.0.1 (``-defaultIPv4``), so pebble validates
HTTP-01 by connecting to 127.0.0.1:<the proxy's HTTP port> (its ``httpPort``). ``add_a``
points one name elsewhere (a validation that fails). Both processes are started here and
stopped by their pids.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
CHALLTESTSRV = shutil.which("pebble-challtestsrv") or "/usr/bin/pebble-challtestsrv"
START_TIMEOUT = 30.0


def have_pebble() -> bool:
    return os.access(PEBBLE, os.X_OK) and os.access(CHALLTESTSRV, os.X_OK)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_listen_cert(directory: Path) -> Path:
    """A self-signed certificate for localhost / 127.0.0.1 (pebble's own HTTPS); its path.
    The key is beside it as ``key.pem``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble test listener")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (directory / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    path = directory / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@dataclass
class Pebble:
    directory_url: str
    listen_cert: Path  # what --directory-ca names: pebble's own HTTPS certificate
    management: int
    dns_management: int
    pids: list[int]

    def root_pem(self) -> bytes:
        """The root that signs pebble's certificates (its management interface /roots/0)."""
        context = ssl.create_default_context(cafile=str(self.listen_cert))
        with urllib.request.urlopen(f"https://127.0.0.1:{self.management}/roots/0",
                                    context=context, timeout=10) as answer:
            return bytes(answer.read())

    def add_a(self, host: str, address: str) -> None:
        body = json.dumps({"host": host, "addresses": [address]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.dns_management}/add-a",
                                         data=body, method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        """Stop pebble and its DNS server, and wait until they are gone (a CA slow to exit
        could still answer, or die mid-answer, in the test that stopped it)."""
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for pid in self.pids:
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:  # ours: reaped
                        break
                time.sleep(0.05)
        self.pids.clear()


def _wait_for_directory(url: str, cafile: Path, process: subprocess.Popen[bytes]) -> None:
    context = ssl.create_default_context(cafile=str(cafile))
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"pebble exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, context=context, timeout=5):
                return
        except OSError as exc:
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()  # an answer, not yet the directory: it holds the socket
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def running_pebble(workdir: Path, http_port: int) -> Iterator[Pebble]:
    """pebble and challtestsrv on free 127.0.0.1 ports; pebble validates HTTP-01 on
    ``http_port``. Logs go to ``workdir``."""
    cert = make_listen_cert(workdir)
    listen, management = free_port(), free_port()
    dns, dns_management = free_port(socket.SOCK_DGRAM), free_port()
    config = workdir / "pebble-config.json"
    config.write_text(json.dumps({"pebble": {
        "listenAddress": f"127.0.0.1:{listen}",
        "managementListenAddress": f"127.0.0.1:{management}",
        "certificate": str(cert), "privateKey": str(workdir / "key.pem"),
        "httpPort": http_port, "tlsPort": free_port(),
        "ocspResponderURL": "", "externalAccountBindingRequired": False}}))
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0",
           "PEBBLE_AUTHZREUSE": "0"}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with open(workdir / "challtestsrv.log", "wb") as log:
            processes.append(subprocess.Popen(
                [CHALLTESTSRV, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                 "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "",
                 "-tlsalpn01", "", "-management", f"127.0.0.1:{dns_management}"],
                stdout=log, stderr=subprocess.STDOUT))
        with open(workdir / "pebble.log", "wb") as log:
            processes.append(subprocess.Popen(
                [PEBBLE, "-config", str(config), "-dnsserver", f"127.0.0.1:{dns}"],
                stdout=log, stderr=subprocess.STDOUT, env=env))
        url = f"https://127.0.0.1:{listen}/dir"
        _wait_for_directory(url, cert, processes[1])
        pebble = Pebble(url, cert, management, dns_management, [p.pid for p in processes])
        yield pebble
    finally:
        for process in processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)

