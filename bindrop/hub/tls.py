"""Automatic HTTPS in the hub: which names need certificates, asking the CA, telling proxies.

``TlsManager`` runs beside the actors, never in one: a background task looks at every name
when something may have changed (an app created, destroyed or its settings changed: the
hub's ``AppCreated``, ``ConfigChanged`` and ``AppDestroyed`` wake it), and every
``check_interval`` seconds for backoffs that ended. Names are done one at a time (the CA's
rate limits are per account; a slow CA delays no deploy). Each order runs in a thread
(``acme`` is blocking); its HTTP-01 answers are published to every proxy over the hub link
(a ``tls`` message, acknowledged like a route table) before the CA is told to look.

The ``tls`` message also carries the hosts whose plain-HTTP requests get a 308 to https (a
valid certificate, and no app on the host says ``allow_http``), the hosts with HSTS, and a
certificate version: a proxy reloads its certificates when that changes, with no restart.

State of a name: read from its certificate file (valid until when, by whom), from what this
hub is doing now (pending / renewing), and from the store's record of attempts (failed, why,
next attempt). Only the last is written to SQLite.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from bindrop.client.proxywire import TlsState
from bindrop.errors import AcmeFailed, Conflict, InvalidInput, NotFound
from bindrop.hub import acmeflow
from bindrop.hub.certfiles import CertFiles, now_utc, parse_ca_bundle
from bindrop.hub.proxylink import ProxyLink
from bindrop.hub.pubsub import AppCreated, AppDestroyed, ConfigChanged, HubEvent, PubSub
from bindrop.hub.tlsnames import (
    CertInfo,
    backoff_delay,
    build_name_state,
    build_wanted_names,
    describe_name,
    plan_due,
)
from bindrop.settings import Settings
from bindrop.store import Store
from bindrop.store.timestamps import parse_timestamp

log = logging.getLogger(__name__)

LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
#: Seconds between looks at every name when nothing woke the manager (backoffs that ended).
CHECK_INTERVAL = 60.0
#: Longest a proxy may take to confirm it serves a challenge before the CA is asked to look.
PUBLISH_TIMEOUT = 10.0
#: How long a closing hub waits for an order in flight to reach its next step and end.
CLOSE_TIMEOUT = 30.0
HSTS_MAX_AGE = 31536000
TLS_EVENTS = ("tls_issued", "tls_renewed", "tls_failed")


class TlsManager:
    def __init__(self, settings: Settings, store: Store, link: ProxyLink | None,
                 events: PubSub, *, check_interval: float = CHECK_INTERVAL) -> None:
        self.settings = settings
        self.store = store
        self.link = link
        self.files = CertFiles(settings.etc_dir / "tls")
        self.check_interval = check_interval
        #: Names being asked for right now.
        self.working: set[str] = set()
        self._challenges: dict[str, str] = {}
        self._certs_version = 0
        self._announced: TlsState | None = None
        self._closing = False
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # One order at a time, in a thread of its own (the acme library blocks).
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="acme")
        #: The order running in its thread, if any (close waits for it to end).
        self._order: concurrent.futures.Future[acmeflow.Issued] | None = None
        self._unsubscribe = [events.subscribe(AppCreated, self._on_config),
                             events.subscribe(ConfigChanged, self._on_config),
                             events.subscribe(AppDestroyed, self._on_config)]

    # -- life ----------------------------------------------------------------------------

    def start(self) -> None:
        """Look at every name now (what is due after a restart), then whenever woken."""
        self._wake.set()
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        """Stop the background task; an order in its thread ends at its next step."""
        self._closing = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        order = self._order
        if order is not None and not order.done():
            # Its next step sees _closing and ends; its connections to the CA close then,
            # not whenever the garbage collector finds them.
            await asyncio.to_thread(concurrent.futures.wait, [order], CLOSE_TIMEOUT)
        self._executor.shutdown(wait=False)

    def wake(self) -> None:
        """Look at every name soon (config may have changed)."""
        self._wake.set()

    def _on_config(self, event: HubEvent) -> None:
        self.wake()  # names, or who redirects to https, may have changed

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.check_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                async with self._lock:
                    await self._round(None, force=())
            except Exception:  # one bad round must not end automatic HTTPS
                log.exception("automatic HTTPS: a round of certificate checks failed")

    # -- what the API calls --------------------------------------------------------------

    def setup(self, email: str, directory: str | None, directory_ca: str | None,
              staging: bool = False) -> dict[str, Any]:
        """Turn ACME on (Let's Encrypt unless ``directory``); ``directory_ca`` is a PEM
        bundle trusted for the directory (a test CA), None: the system's CAs."""
        if directory and staging:
            raise InvalidInput("give either --directory or --staging, not both")
        url = directory or (LETSENCRYPT_STAGING if staging else LETSENCRYPT)
        pem = None
        if directory_ca is not None:
            try:
                pem = parse_ca_bundle(directory_ca.encode())
            except (ValueError, UnicodeError):
                raise InvalidInput("--directory-ca must be a PEM file of CA certificates"
                                   ) from None
        self.store.set_tls_settings(email, url)
        self.files.set_directory_ca(pem)
        self.wake()
        return self.describe()

    def off(self) -> dict[str, Any]:
        """Stop asking for certificates; those on disk keep serving."""
        self.store.disable_tls()
        return self.describe()

    def describe(self) -> dict[str, Any]:
        settings = self.store.get_tls_settings()
        return settings.to_dict() | {
            "directory_ca": self.files.directory_ca_path() is not None,
            "names": self.list_names()}

    def list_names(self) -> list[dict[str, Any]]:
        wanted = self._wanted()
        attempts = self.store.list_tls_attempts()
        now = now_utc()
        names = []
        for name, app in wanted.items():
            cert = self.files.read_info(name)
            attempt = attempts.get(name)
            error = attempt.last_error if attempt else None
            state = build_name_state(cert, working=name in self.working,
                                     failed=error is not None, now=now)
            names.append(describe_name(name, app, state, cert, error,
                                       attempt.next_attempt if attempt else None))
        return names

    async def renew(self, name: str | None = None, force: bool = False) -> list[dict[str, Any]]:
        """Ask for what is due now (only ``name``, if given; ``force``: even a certificate far
        from expiry, and past a backoff). Returns the names' states afterwards."""
        if not self.store.get_tls_settings().enabled:
            raise Conflict("automatic HTTPS is off: bindrop tls setup --email you@example.com")
        wanted = self._wanted()
        if name is not None and name.lower() not in wanted:
            raise NotFound(f"no app host (or bindrop host) is {name} with a certificate to "
                           "ask for; see bindrop tls list")
        only = [name.lower()] if name else list(wanted)
        async with self._lock:
            await self._round(only, force=only if force else ())
        return [n for n in self.list_names() if n["name"] in only]

    # -- a round -------------------------------------------------------------------------

    def _wanted(self) -> dict[str, str | None]:
        extra = [self.settings.control_host] if self.settings.api_port is not None else []
        return build_wanted_names(self.store.list_apps(include_system=True), extra)

    async def _round(self, only: Collection[str] | None, *, force: Collection[str]) -> None:
        settings = self.store.get_tls_settings()
        if not settings.enabled:  # issued certificates still serve, and still redirect
            await self._announce(if_changed=True)
            return
        wanted = self._wanted()
        names = [n for n in wanted if only is None or n in only]
        certs = {n: c for n in names if (c := self.files.read_info(n)) is not None}
        attempts = self.store.list_tls_attempts()
        next_attempts = {n: parse_timestamp(a.next_attempt) if a.next_attempt else None
                         for n, a in attempts.items()}
        for name in plan_due(names, certs, next_attempts, now_utc(), force=force):
            await self._obtain(name, wanted[name], certs.get(name),
                               attempts[name].failures if name in attempts else 0)
        # Hosts, allow_http or hsts may have changed without a new certificate.
        await self._announce(if_changed=True)

    async def _obtain(self, name: str, app: str | None, cert: CertInfo | None,
                      failures: int) -> None:
        settings = self.store.get_tls_settings()
        account = acmeflow.Account(settings.directory, settings.email,
                                   self.files.account_key_pem(), self.files.directory_ca_path())
        loop = asyncio.get_running_loop()

        def publish(answers: Mapping[str, str]) -> None:  # called from the ACME thread
            if self._closing:
                raise AcmeFailed("the hub is stopping; the order is left for its next start")
            future = asyncio.run_coroutine_threadsafe(self._publish(answers), loop)
            future.result(PUBLISH_TIMEOUT + 5)

        self.working.add(name)
        log.info("automatic HTTPS: asking %s for a certificate for %s", settings.directory,
                 name)
        try:
            order = self._order = self._executor.submit(acmeflow.issue, account, name, publish)
            issued = await asyncio.wrap_future(order)
        except AcmeFailed as exc:
            retry = now_utc() + timedelta(seconds=backoff_delay(failures + 1))
            self.store.record_tls_attempt(name, error=exc.message,
                                          next_attempt=retry.isoformat())
            log.warning("automatic HTTPS: no certificate for %s: %s", name, exc.message)
            self.store.add_event("tls_failed", app, f"no certificate for {name}: "
                                 f"{exc.message}"[:1900],
                                 {"name": name, "reason": exc.message[:1500],
                                  "next_attempt": retry.isoformat()})
            return
        finally:
            self.working.discard(name)
            if self._order is not None and self._order.done():
                self._order = None  # ended: nothing of it is kept (close waits for the rest)
        self.files.write_pair(name, issued.chain_pem, issued.key_pem)
        self.store.record_tls_attempt(name, error=None, next_attempt=None)
        new = self.files.read_info(name)
        kind = "tls_renewed" if cert is not None else "tls_issued"
        until = new.not_after.isoformat() if new else "?"
        self.store.add_event(kind, app, f"certificate for {name} "
                             f"{'renewed' if cert else 'issued'}, valid until {until}",
                             {"name": name, "not_after": until,
                              "issuer": new.issuer if new else None})
        log.info("automatic HTTPS: certificate for %s valid until %s", name, until)
        self._certs_version += 1
        await self._announce()

    # -- telling proxies -----------------------------------------------------------------

    async def _publish(self, answers: Mapping[str, str]) -> None:
        self._challenges = dict(answers)
        await self._announce()

    def build_message(self, now: datetime | None = None) -> TlsState:
        """The ``tls`` message for proxies now."""
        now = now or now_utc()
        apps = self.store.list_apps(include_system=True)
        allow_http: set[str] = set()
        hsts: set[str] = set()
        for app in apps:
            for host in app.hosts:
                name = host.partition("/")[0].lower()
                if app.allow_http:
                    allow_http.add(name)
                if app.hsts:
                    hsts.add(name)
        valid = set()
        for name in self._wanted():
            cert = self.files.read_info(name)
            if cert is not None and cert.not_after > now:
                valid.add(name)
        return TlsState(challenges=dict(self._challenges),
                        redirect=frozenset(valid - allow_http), hsts=frozenset(valid & hsts),
                        hsts_max_age=HSTS_MAX_AGE, certs=self._certs_version)

    async def _announce(self, *, if_changed: bool = False) -> None:
        """Send the ``tls`` message (with ``if_changed``: only if it differs from the last)."""
        if self.link is None:
            return
        message = self.build_message()
        if if_changed and message == self._announced:
            return
        self._announced = message
        await self.link.announce(message)

