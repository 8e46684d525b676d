"""Certificate and key files under ``/etc/bindrop/tls/`` (root only, 0600).

``<name>.crt`` (the full chain, leaf first) and ``<name>.key`` are what the proxy serves
(``bindrop.proxy.certs``); the ACME account key and the CA bundle trusted for the ACME
directory live in ``acme/`` beside them, where the proxy does not look. Files are written
to a temporary name and renamed, the key before the chain, so a reader sees the old pair or
the new one (the proxy loads a pair only when the key matches).
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bindrop.hub.tlsnames import CertInfo

ACCOUNT_DIR = "acme"
ACCOUNT_KEY = "account.key"
DIRECTORY_CA = "directory-ca.pem"


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600) atomically: a temporary file, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def new_private_key_pem() -> bytes:
    """A fresh ECDSA P-256 key in PEM (PKCS#8)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class CertFiles:
    """The files of one server's TLS directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def account_dir(self) -> Path:
        return self.directory / ACCOUNT_DIR

    @property
    def directory_ca(self) -> Path:
        return self.account_dir / DIRECTORY_CA

    def account_key_pem(self) -> bytes:
        """The ACME account key, made on first use."""
        path = self.account_dir / ACCOUNT_KEY
        with contextlib.suppress(FileNotFoundError):
            return path.read_bytes()
        pem = new_private_key_pem()
        write_private(path, pem)
        return pem

    def set_directory_ca(self, pem: bytes | None) -> None:
        """Trust ``pem`` (a CA bundle) for the ACME directory; None: the system's CAs."""
        if pem is None:
            with contextlib.suppress(FileNotFoundError):
                self.directory_ca.unlink()
            return
        write_private(self.directory_ca, pem)

    def directory_ca_path(self) -> Path | None:
        return self.directory_ca if self.directory_ca.is_file() else None

    def paths(self, name: str) -> tuple[Path, Path]:
        return self.directory / f"{name}.crt", self.directory / f"{name}.key"

    def write_pair(self, name: str, chain_pem: bytes, key_pem: bytes) -> None:
        crt, key = self.paths(name)
        write_private(key, key_pem)
        write_private(crt, chain_pem)

    def read_info(self, name: str) -> CertInfo | None:
        """The leaf of ``<name>.crt``; None when there is none or it does not parse."""
        try:
            data = self.paths(name)[0].read_bytes()
        except OSError:
            return None
        return parse_cert_info(data)


def parse_cert_info(pem: bytes) -> CertInfo | None:
    try:
        leaf = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None
    return CertInfo(leaf.not_valid_after_utc.astimezone(UTC), leaf.issuer.rfc4514_string(),
                    format(leaf.serial_number, "x"))


def parse_ca_bundle(pem: bytes) -> bytes:
    """``pem`` if it holds at least one certificate; ``ValueError`` otherwise. Pure."""
    certs = x509.load_pem_x509_certificates(pem)
    if not certs:
        raise ValueError("no certificate in the bundle")
    return pem


def now_utc() -> datetime:
    return datetime.now(UTC)
