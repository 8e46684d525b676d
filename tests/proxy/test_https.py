"""HTTPS termination with real TLS: certificates made at test time with the openssl CLI (a CA
and one leaf per hostname), a proxy with an HTTPS listener, and clients that verify."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bindrop.client.proxywire import TlsState
from bindrop.proxy.listen import bind_socket
from bindrop.proxy.server import ProxyServer
from bindrop.proxy.snapshot import tls_snapshot_path
from bindrop.store import AppConfig, Store

from .kit import HANG, Backend, HubEnd, proxy_options, raw_request

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path) -> Path:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=bindrop test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    return directory / "ca.crt"


def make_leaf(ca_dir: Path, out: Path, host: str, stem: str | None = None) -> None:
    """``<stem>.crt`` + ``.key`` in ``out`` for ``host``, signed by the CA in ``ca_dir``."""
    stem = stem or host
    ext = ca_dir / f"{stem}.ext"
    ext.write_text(f"subjectAltName=DNS:{host}\nbasicConstraints=CA:FALSE\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", out / f"{stem}.key", "-out", ca_dir / f"{stem}.csr",
             "-subj", f"/CN={host}", cwd=ca_dir)
    _openssl("x509", "-req", "-in", ca_dir / f"{stem}.csr", "-CA", "ca.crt", "-CAkey",
             "ca.key", "-CAcreateserial", "-out", out / f"{stem}.crt", "-days", "2",
             "-extfile", ext, cwd=ca_dir)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the CA certificate, a tls directory): web.test, api.test, *.wild.test, a pair whose
    key belongs to another certificate, a certificate that is not PEM, one without a key."""
    ca_dir = tmp_path_factory.mktemp("ca")
    tls = tmp_path_factory.mktemp("tls")
    ca = make_ca(ca_dir)
    for host in ("web.test", "api.test", "secure.test", "mismatch.test"):
        make_leaf(ca_dir, tls, host)
    make_leaf(ca_dir, tls, "*.wild.test", "_wildcard.wild.test")
    shutil.copy(tls / "web.test.key", tls / "mismatch.test.key")
    (tls / "garbage.test.crt").write_text("not a certificate\n")
    (tls / "garbage.test.key").write_text("not a key\n")
    shutil.copy(tls / "web.test.crt", tls / "lonely.test.crt")
    return ca, tls


@pytest.fixture
async def tls_proxy(hub_end: HubEnd, backend: Backend, store: Store, tmp_path: Path,
                    pki: tuple[Path, Path]) -> AsyncIterator[ProxyServer]:
    """A proxy with a plain and an HTTPS listener; ``web`` and ``secure`` (https_redirect)
    routed to ``backend``."""
    store.create_app(AppConfig(name="secure", hosts=("secure.test",), https_redirect=True))
    await hub_end.publish("web", backend.port)
    await hub_end.publish("secure", backend.port)
    options = dataclasses.replace(proxy_options(hub_end, tmp_path), tls_dir=pki[1])
    proxy = ProxyServer(options, access_out=io.StringIO())
    await proxy.start([bind_socket("127.0.0.1", 0)], [bind_socket("127.0.0.1", 0)])
    try:
        async with asyncio.timeout(HANG):
            await proxy.hub.connected.wait()
        yield proxy
    finally:
        await proxy.close()


def https_port(proxy: ProxyServer) -> int:
    return int(proxy.https_sockets[0].getsockname()[1])


async def https_get(proxy: ProxyServer, ca: Path, server_name: str, host: str | None = None,
                    path: str = "/") -> tuple[dict[str, object], bytes]:
    """GET over TLS with SNI ``server_name``, verifying against ``ca``: (peer certificate,
    raw answer)."""
    context = ssl.create_default_context(cafile=str(ca))
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", https_port(proxy), ssl=context, server_hostname=server_name)
        peer = writer.get_extra_info("peercert")
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host or server_name}\r\n"
                     "Connection: close\r\n\r\n".encode())
        data = await reader.read()
        writer.close()
    return peer, data


def alt_names(peer: dict[str, object]) -> list[str]:
    return [value for kind, value in peer["subjectAltName"]]  # type: ignore[attr-defined]


async def test_each_hostname_gets_its_own_certificate_by_sni(
        tls_proxy: ProxyServer, pki: tuple[Path, Path]) -> None:
    ca, _ = pki
    web, _ = await https_get(tls_proxy, ca, "web.test")
    api, _ = await https_get(tls_proxy, ca, "api.test")
    wild, _ = await https_get(tls_proxy, ca, "blog.wild.test")
    assert alt_names(web) == ["web.test"]
    assert alt_names(api) == ["api.test"]
    assert alt_names(wild) == ["*.wild.test"]


async def test_a_request_over_https_reaches_the_app_marked_https(
        tls_proxy: ProxyServer, backend: Backend, pki: tuple[Path, Path]) -> None:
    _, raw = await https_get(tls_proxy, pki[0], "web.test", path="/over/tls?q=1")
    assert raw.startswith(b"HTTP/1.1 200")
    seen = json.loads(raw.partition(b"\r\n\r\n")[2])
    headers = {k.lower(): v for k, v in seen["headers"]}
    assert seen["raw_path"] == "/over/tls?q=1"
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-host"] == "web.test"


async def test_an_https_redirect_app_answers_308_over_http_and_serves_over_https(
        tls_proxy: ProxyServer, backend: Backend, pki: tuple[Path, Path]) -> None:
    raw = await raw_request(tls_proxy.ports[0], b"GET /a%2Fb/c?x=%20y HTTP/1.1\r\n"
                            b"Host: secure.test\r\nConnection: close\r\n\r\n")
    head = raw.partition(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 308")
    assert f"Location: https://secure.test:{https_port(tls_proxy)}/a%2Fb/c?x=%20y" in head
    assert not backend.seen
    _, over_tls = await https_get(tls_proxy, pki[0], "secure.test", path="/a%2Fb")
    assert over_tls.startswith(b"HTTP/1.1 200")
    # An app without the setting is served over plain HTTP as before.
    plain = await raw_request(tls_proxy.ports[0], b"GET / HTTP/1.1\r\nHost: web.test\r\n"
                              b"Connection: close\r\n\r\n")
    assert plain.startswith(b"HTTP/1.1 200")


async def test_broken_certificate_pairs_are_skipped_and_logged_by_name(
        tls_proxy: ProxyServer, pki: tuple[Path, Path], caplog: pytest.LogCaptureFixture
        ) -> None:
    certificates = tls_proxy.certificates
    assert certificates is not None
    assert sorted(certificates.contexts) == ["*.wild.test", "api.test", "secure.test",
                                             "web.test"]
    # The mismatched name falls back to the default (the first good pair by file name),
    # whose certificate a verifying client refuses: the other sites still work.
    with pytest.raises(ssl.SSLCertVerificationError):
        await https_get(tls_proxy, pki[0], "mismatch.test")
    web, raw = await https_get(tls_proxy, pki[0], "web.test")
    assert alt_names(web) == ["web.test"] and raw.startswith(b"HTTP/1.1 200")
    caplog.set_level(logging.WARNING, logger="bindrop.proxy.certs")
    assert certificates.refresh(force=True)  # reload as after a change, to see what it logs
    logged = caplog.text
    assert "mismatch.test" in logged and "garbage.test" in logged and "lonely.test" in logged


async def test_changed_certificate_files_are_picked_up_without_a_restart(
        hub_end: HubEnd, tmp_path: Path, pki: tuple[Path, Path]) -> None:
    tls = tmp_path / "tls"
    tls.mkdir()
    options = dataclasses.replace(proxy_options(hub_end, tmp_path), tls_dir=tls,
                                  cert_check_interval=0.05)
    proxy = ProxyServer(options, access_out=io.StringIO())
    await proxy.start([bind_socket("127.0.0.1", 0)], [bind_socket("127.0.0.1", 0)])
    try:
        # No certificate at all: the handshake fails (and says why in the log).
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await https_get(proxy, pki[0], "web.test")
        for suffix in (".crt", ".key"):
            shutil.copy(pki[1] / f"web.test{suffix}", tls / f"web.test{suffix}")
        async with asyncio.timeout(HANG):
            while proxy.certificates is None or "web.test" not in proxy.certificates.contexts:
                await asyncio.sleep(0.02)
        peer, _ = await https_get(proxy, pki[0], "web.test")
        assert alt_names(peer) == ["web.test"]
    finally:
        await proxy.close()


async def announce_tls(hub_end: HubEnd, proxy: ProxyServer, state: TlsState) -> None:
    """The hub pushes ``state``; return once ``proxy`` serves it."""
    await hub_end.link.announce(state)
    async with asyncio.timeout(HANG):
        while proxy.tls.state.version != hub_end.link.version:
            await asyncio.sleep(0.01)


def plain_get(host: str) -> bytes:
    return f"GET /p?q=1 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


async def test_a_proxy_restarted_while_the_hub_is_down_keeps_the_redirect_and_hsts(
        hub_end: HubEnd, backend: Backend, tmp_path: Path, pki: tuple[Path, Path]) -> None:
    """The automatic-HTTPS part of what the hub pushed (web.test: 308 to https, HSTS) is
    served at once by a proxy that restarts while the hub is down, as the routes are; the
    hub's next push replaces it."""
    await hub_end.publish("web", backend.port)
    options = dataclasses.replace(proxy_options(hub_end, tmp_path), tls_dir=pki[1])
    secure = TlsState(redirect=frozenset({"web.test"}), hsts=frozenset({"web.test"}),
                      hsts_max_age=600, certs=1)
    proxy = ProxyServer(options, access_out=io.StringIO())
    await proxy.start([bind_socket("127.0.0.1", 0)], [bind_socket("127.0.0.1", 0)])
    try:
        async with asyncio.timeout(HANG):
            await proxy.hub.connected.wait()
        await announce_tls(hub_end, proxy, secure)
    finally:
        await proxy.close()
    await hub_end.stop()

    proxy = ProxyServer(options, access_out=io.StringIO())
    await proxy.start([bind_socket("127.0.0.1", 0)], [bind_socket("127.0.0.1", 0)])
    try:
        assert not proxy.hub.connected.is_set()
        head = (await raw_request(proxy.ports[0], plain_get("web.test"))).partition(
            b"\r\n\r\n")[0].decode()
        assert head.startswith("HTTP/1.1 308"), head
        assert f"Location: https://web.test:{https_port(proxy)}/p?q=1" in head
        assert not backend.seen
        peer, raw = await https_get(proxy, pki[0], "web.test")
        assert alt_names(peer) == ["web.test"]
        assert raw.startswith(b"HTTP/1.1 200")
        assert b"\r\nStrict-Transport-Security: max-age=600\r\n" in raw.partition(
            b"\r\n\r\n")[0] + b"\r\n"
        # The hub is back and says web.test is plain HTTP now: that wins.
        await hub_end.start()
        async with asyncio.timeout(HANG):
            await proxy.hub.connected.wait()
        await announce_tls(hub_end, proxy, TlsState(certs=1))
        plain = await raw_request(proxy.ports[0], plain_get("web.test"))
        assert plain.startswith(b"HTTP/1.1 200"), plain
    finally:
        await proxy.close()


async def test_a_damaged_tls_snapshot_is_ignored_with_a_warning(
        hub_end: HubEnd, backend: Backend, tmp_path: Path, pki: tuple[Path, Path],
        caplog: pytest.LogCaptureFixture) -> None:
    await hub_end.publish("web", backend.port)
    options = dataclasses.replace(proxy_options(hub_end, tmp_path), tls_dir=pki[1])
    proxy = ProxyServer(options, access_out=io.StringIO())
    await proxy.start([bind_socket("127.0.0.1", 0)])
    try:
        async with asyncio.timeout(HANG):
            await proxy.hub.connected.wait()
        await announce_tls(hub_end, proxy, TlsState(redirect=frozenset({"web.test"})))
    finally:
        await proxy.close()
    await hub_end.stop()
    assert options.snapshot is not None
    tls_snapshot_path(options.snapshot).write_text('{"type": "tls", "redir')

    caplog.set_level(logging.WARNING, logger="bindrop.proxy.snapshot")
    proxy = ProxyServer(options, access_out=io.StringIO())
    await proxy.start([bind_socket("127.0.0.1", 0)], [bind_socket("127.0.0.1", 0)])
    try:
        assert "ignoring the TLS snapshot" in caplog.text
        plain = await raw_request(proxy.ports[0], plain_get("web.test"))
        assert plain.startswith(b"HTTP/1.1 200"), plain  # the routes' snapshot still serves
        _, raw = await https_get(proxy, pki[0], "web.test")
        assert raw.startswith(b"HTTP/1.1 200")
    finally:
        await proxy.close()
