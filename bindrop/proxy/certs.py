"""Certificates from files, one pair per hostname, chosen by SNI.

The directory (``Settings.etc_dir / "tls"``, /etc/bindrop/tls/) holds ``<hostname>.crt`` and
``<hostname>.key`` in PEM; a wildcard ``*.example.com`` is ``_wildcard.example.com.crt`` and
``.key``. Each pair becomes its own ``ssl.SSLContext``; the listener's context switches to the
right one in its ``sni_callback``. A pair that is missing a half, unreadable or mismatched is
logged by name and skipped: one bad file never takes the other sites (or the proxy) down.

Reloading: contexts are loaded once, then ``Certificates.refresh()`` compares the files'
(name, mtime, size) and reloads the whole directory only when that changed. The proxy calls
it every ``CHECK_INTERVAL`` seconds (a stat of a few files: cheap), so replacing a pair needs
no signal and no restart.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

WILDCARD_PREFIX = "_wildcard."
#: Seconds between checks of the certificate directory for changed files.
CHECK_INTERVAL = 10.0
#: TLS 1.2 suites (1.3's are OpenSSL's own, all modern): forward secrecy and AEAD only, as
#: Mozilla's "intermediate" profile.
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"


def new_server_context() -> ssl.SSLContext:
    """A server context: TLS 1.2 or newer, modern suites, session tickets (returning visitors
    resume without a full handshake). Its ticket keys are made here, at random: workers
    forked after it was made share them, so a visitor resumes on any worker."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHERS)
    context.options &= ~ssl.OP_NO_TICKET
    return context


def host_for_file_stem(stem: str) -> str:
    """``_wildcard.example.com`` -> ``*.example.com``; other names as they are, lowercased."""
    stem = stem.lower()
    if stem.startswith(WILDCARD_PREFIX):
        return "*." + stem[len(WILDCARD_PREFIX):]
    return stem


def pick_certificate(names: Iterable[str], server_name: str | None,
                     default: str | None) -> str | None:
    """The certificate name for an SNI ``server_name``: the exact name, else the wildcard one
    level up (``*.example.com`` for ``a.example.com``, not for ``a.b.example.com``), else
    ``default`` (None: no certificate, the handshake fails). Pure."""
    available = set(names)
    if server_name:
        wanted = server_name.lower().rstrip(".")
        if wanted in available:
            return wanted
        _, dot, parent = wanted.partition(".")
        if dot and parent and f"*.{parent}" in available:
            return f"*.{parent}"
    return default


def scan_pairs(directory: Path) -> dict[str, tuple[Path, Path]]:
    """Hostname -> (crt, key) for every ``*.crt`` in ``directory`` with its ``.key`` beside
    it, sorted by file name. A lone half is logged and left out. Reads only the listing."""
    pairs: dict[str, tuple[Path, Path]] = {}
    try:
        crts = sorted(directory.glob("*.crt"))
    except OSError as exc:
        log.warning("cannot list certificates in %s: %s", directory, exc)
        return pairs
    for crt in crts:
        key = crt.with_suffix(".key")
        if not key.is_file():
            log.warning("certificate %s has no key %s: skipped", crt.name, key.name)
            continue
        pairs[host_for_file_stem(crt.stem)] = (crt, key)
    return pairs


def load_contexts(pairs: Mapping[str, tuple[Path, Path]]) -> dict[str, ssl.SSLContext]:
    """A server context per hostname; a pair that does not load is logged and skipped."""
    contexts: dict[str, ssl.SSLContext] = {}
    for host, (crt, key) in pairs.items():
        context = new_server_context()
        try:
            context.load_cert_chain(crt, key)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.warning("certificate for %s (%s + %s) does not load, skipped: %s",
                        host, crt.name, key.name, exc)
            continue
        contexts[host] = context
    return contexts


def _fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    try:
        files = sorted(p for p in directory.iterdir() if p.suffix in (".crt", ".key"))
        return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    except OSError:
        return ()


class Certificates:
    """The certificates of one directory and the listener context that picks among them.

    ``context`` is what the HTTPS listener uses, for its whole life: it holds no certificate
    itself; its SNI callback (which OpenSSL calls for every ClientHello, with None when the
    client sent no name) hands each connection the context of its hostname. The default (no
    SNI, or a name without a certificate) is the first pair by file name; with none the
    handshake fails and the name is logged."""

    def __init__(self, directory: Path, front: ssl.SSLContext | None = None) -> None:
        """``front``: the context every handshake starts on (its ticket keys encrypt the
        session tickets), made before the workers were forked; a new one if None."""
        self.directory = directory
        self.contexts: dict[str, ssl.SSLContext] = {}
        self.default: str | None = None
        self._seen: tuple[tuple[str, int, int], ...] | None = None
        self.context = front or new_server_context()
        self.context.sni_callback = self._pick
        self.refresh()

    def refresh(self, force: bool = False) -> bool:
        """Reload every pair if the directory's files changed (or ``force``); True if it
        reloaded."""
        seen = _fingerprint(self.directory)
        if seen == self._seen and not force:
            return False
        self._seen = seen
        contexts = load_contexts(scan_pairs(self.directory))
        # Swapped whole: a handshake in progress sees the old set or the new, never half.
        self.contexts, self.default = contexts, next(iter(contexts), None)
        log.info("loaded %d certificates from %s: %s", len(contexts), self.directory,
                 ", ".join(contexts) or "none")
        return True

    def _pick(self, sock: ssl.SSLObject, server_name: str | None,
              _context: ssl.SSLContext) -> int | None:
        name = pick_certificate(self.contexts, server_name, self.default)
        if name is None:
            log.warning("TLS handshake for %s refused: no certificate in %s",
                        server_name or "(no server name)", self.directory)
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sock.context = self.contexts[name]
        return None
