"""Alerts: one webhook, told of changes a person wants to know about, never blocking the hub.

What is sent is a JSON POST ``{kind, server, app, message, link, at}``. Things that hold a
state (the disk over its threshold, backups failing, an app that gave up, a certificate that
failed to renew) alert on the change only: once when they go bad, once when they are good
again, nothing while a state holds. One-off failures (a deploy that failed) alert each time.

Other parts of the hub call:

- ``hub.alerts.notify(kind, app, message)``: send this alert (queued; returns at once);
- ``hub.alerts.change(key, bad, kind=..., good_kind=..., app=..., message=...)``: alert only
  when ``key`` goes from good to bad (``kind``) or back (``good_kind``), e.g. for TLS:
  ``change(f"tls:{host}", True, kind="certificate_renewal_failed",
  good_kind="certificate_renewed", app=None, message=why)``.

Delivery runs in one background task with a bounded queue (the oldest alert is dropped when
it is full), retries with backoff (``BACKOFF_S``), and a named timeout per attempt
(``SEND_TIMEOUT_S``). The webhook URL is desired config (SQLite); what was sent is run-state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bindrop.errors import BindropError, Conflict, DeliveryFailed
from bindrop.hub.state import AppRunState, AppStateChanged, Change, StateStore
from bindrop.settings import Settings
from bindrop.store import Store
from bindrop.store.events import Event

log = logging.getLogger(__name__)

#: Waits between attempts; after the last, the alert is dropped (and logged).
BACKOFF_S: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
#: One attempt's limit: connect, send and read the answer.
SEND_TIMEOUT_S = 10.0
QUEUE_MAX = 200
#: Events that are one alert each time they happen.
ONE_OFF = {"deploy_failed": "deploy_failed", "rollback_failed": "deploy_failed"}
#: Events that set a state: (key, bad?, alert kind when it becomes bad / good).
STATEFUL = {
    "backup_failed": ("backup", True),
    "backup_succeeded": ("backup", False),
    "disk_over_threshold": ("disk", True),
    "disk_back_under": ("disk", False),
}
KINDS = {"backup": ("backup_failed", "backup_succeeding_again"),
         "disk": ("disk_over_threshold", "disk_back_under")}


@dataclass(frozen=True)
class Alert:
    kind: str
    server: str
    app: str | None
    message: str
    link: str | None
    at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Alerts:
    """The webhook's alerts. Only the hub creates one (``hub.alerts``)."""

    def __init__(self, settings: Settings, store: Store, state: StateStore, *,
                 backoff: Sequence[float] = BACKOFF_S, server: str | None = None) -> None:
        self.settings = settings
        self.store = store
        self.state = state
        self.backoff = tuple(backoff)
        self.server = server or socket.gethostname()
        self._queue: deque[Alert] = deque(maxlen=QUEUE_MAX)
        self._wakeup = asyncio.Event()
        self._bad: dict[str, bool] = {}
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: list[Any] = []
        #: Counters for `alerts show` (run-state).
        self.sent = 0
        self.dropped = 0
        self.last_error: str | None = None

    def start(self) -> None:
        """Know the current states from the last events, listen, start delivering."""
        for key in KINDS:
            last = self.store.last_event_of(
                [kind for kind, (of, _) in STATEFUL.items() if of == key])
            self._bad[key] = last is not None and STATEFUL[last.kind][1]
        self._unsubscribe.append(self.store.subscribe_events(self._on_event))
        self._unsubscribe.append(self.state.subscribe(self._on_change))
        self._task = asyncio.ensure_future(self._deliver())

    async def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- what to send ----------------------------------------------------------------------

    def notify(self, kind: str, app: str | None, message: str) -> Alert | None:
        """Queue an alert for the webhook (None when no webhook is set). Never blocks."""
        if self.store.alert_webhook() is None:
            return None
        alert = Alert(kind, self.server, app, message, self.link(app),
                      datetime.now(UTC).isoformat(timespec="seconds"))
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
            log.warning("alert queue full: dropping the oldest alert")
        self._queue.append(alert)
        self._wakeup.set()
        return alert

    def change(self, key: str, bad: bool, *, kind: str, good_kind: str, app: str | None,
               message: str) -> Alert | None:
        """Alert only if ``key`` changed: good -> bad (``kind``) or bad -> good
        (``good_kind``). Unknown keys start good."""
        was = self._bad.get(key, False)
        self._bad[key] = bad
        if bad == was:
            return None
        return self.notify(kind if bad else good_kind, app, message)

    def link(self, app: str | None) -> str | None:
        host = self.settings.dashboard_host
        if host is None:
            return None
        scheme = "http" if host == "localhost" or host.endswith(".localhost") else "https"
        return f"{scheme}://{host}/apps/{app}" if app else f"{scheme}://{host}/server"

    def _on_event(self, event: Event) -> None:
        try:
            if event.kind in ONE_OFF:
                self.notify(ONE_OFF[event.kind], event.app, event.message)
            elif event.kind in STATEFUL:
                key, bad = STATEFUL[event.kind]
                bad_kind, good_kind = KINDS[key]
                self.change(key, bad, kind=bad_kind, good_kind=good_kind, app=event.app,
                            message=event.message)
            elif event.kind == "app_gave_up" and event.app:
                self.change(f"app:{event.app}", True, kind="app_gave_up",
                            good_kind="app_recovered", app=event.app, message=event.message)
        except BindropError as exc:  # a listener must not raise
            log.warning("could not queue an alert for %s: %s", event.kind, exc.message)

    def _on_change(self, change: Change) -> None:
        if not isinstance(change, AppStateChanged) or change.new is None:
            return
        app = change.new.app
        if change.new.state == AppRunState.RUNNING and self._bad.get(f"app:{app}"):
            try:
                self.change(f"app:{app}", False, kind="app_gave_up", good_kind="app_recovered",
                            app=app, message=f"{app} runs again")
            except BindropError as exc:
                log.warning("could not queue an alert for %s: %s", app, exc.message)

    # -- delivery --------------------------------------------------------------------------

    async def send(self, alert: Alert, url: str) -> None:
        """One attempt; ``BindropError`` saying why it failed."""
        try:
            async with aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S)) as session, \
                    session.post(url, json=alert.to_dict(),
                                 headers={"User-Agent": "bindrop-alerts"}) as response:
                if not 200 <= response.status < 300:
                    raise DeliveryFailed(f"the webhook answered {response.status}")
        except aiohttp.InvalidURL:
            raise DeliveryFailed("the webhook's URL is not valid; set it again "
                                 "(`bindrop alerts set --webhook URL`)") from None
        except aiohttp.TooManyRedirects:
            raise DeliveryFailed("the webhook redirected too many times") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryFailed(f"the webhook could not be reached: "
                                 f"{exc.__class__.__name__} {redact(str(exc), url)}") from None

    async def test(self) -> Alert:
        """Send a test alert now, once; ``BindropError`` if no webhook is set or it fails."""
        url = self.store.alert_webhook()
        if url is None:
            raise Conflict("no webhook is set; `bindrop alerts set --webhook URL`")
        alert = Alert("test", self.server, None, "a test alert from bindrop", self.link(None),
                      datetime.now(UTC).isoformat(timespec="seconds"))
        await self.send(alert, url)
        return alert

    async def _deliver(self) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            alert = self._queue[0]
            for attempt, wait in enumerate((*self.backoff, None)):
                url = self.store.alert_webhook()
                if url is None:
                    break
                try:
                    await self.send(alert, url)
                    self.sent += 1
                    self.last_error = None
                    break
                except BindropError as exc:
                    self.last_error = exc.message
                    if wait is None:
                        self.dropped += 1
                        log.warning("alert %s dropped after %d attempts: %s", alert.kind,
                                    attempt + 1, exc.message)
                        break
                    await asyncio.sleep(wait)
            if self._queue and self._queue[0] is alert:
                self._queue.popleft()

    def to_dict(self) -> dict[str, Any]:
        return {"webhook": self.store.alert_webhook(), "sent": self.sent,
                "dropped": self.dropped, "pending": len(self._queue),
                "last_error": self.last_error}


def redact(text: str, url: str) -> str:
    """``text`` without the parts of ``url`` that may be secrets: its user and password, its
    path (a Slack-style hook's secret) and query. What is left says host and port. Pure."""
    parts = urlsplit(url)
    secrets = {url, parts.netloc.rpartition("@")[0] if "@" in parts.netloc else "",
               parts.username or "", parts.password or "", parts.query,
               parts.path if len(parts.path) > 1 else ""}
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "…")
    return text
