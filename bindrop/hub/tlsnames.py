"""Which names get certificates, which are due, and how each one stands. Pure.

A name can get a public certificate when a CA could reach it: not ``localhost`` or a name
under it, not an IP address, not a single label (``intranet``), not a wildcard (HTTP-01 cannot
prove one). Path-prefixed hosts (``example.com/blog``) share their host's certificate. Apps
that say ``no_tls`` get none; the control host (with the API on TCP) gets one as an app does.
Certificates are renewed ``RENEW_BEFORE`` before they expire; failures back off per name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bindrop.store import AppConfig

RENEW_BEFORE = timedelta(days=30)
BACKOFF_MIN_S = 60.0
BACKOFF_MAX_S = 86400.0
#: Let's Encrypt allows 5 failed validations per name per hour: from the 5th failure in a
#: row on, attempts are at least an hour apart, so a name never runs into that limit.
FAILURES_PER_HOUR = 5

PENDING, VALID, RENEWING, FAILED = "pending", "valid", "renewing", "failed"


@dataclass(frozen=True)
class CertInfo:
    """What the certificate file of a name says (the leaf of its chain)."""

    not_after: datetime
    issuer: str
    serial: str


def can_have_certificate(host: str) -> bool:
    """True for a name a public CA could validate over HTTP-01."""
    name = host.lower().rstrip(".")
    if not name or name == "localhost" or name.endswith(".localhost"):
        return False
    if "*" in name or "." not in name:
        return False
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return True
    return False


def build_wanted_names(apps: Iterable[AppConfig], extra: Iterable[str | None] = ()
                       ) -> dict[str, str | None]:
    """Every name that should have a certificate -> the app it serves (None for bindrop's
    own, e.g. the control host in ``extra``)."""
    wanted: dict[str, str | None] = {}
    for host in extra:
        if host and can_have_certificate(host):
            wanted.setdefault(host.lower(), None)
    for app in sorted(apps, key=lambda a: a.name):
        if app.no_tls:
            continue
        for host in app.hosts:
            name = host.partition("/")[0].lower()
            if can_have_certificate(name):
                wanted.setdefault(name, app.name)
    return dict(sorted(wanted.items()))


def backoff_delay(failures: int) -> float:
    """Seconds before the next attempt after ``failures`` failures in a row: 1 min,
    doubling, at most a day (and at least an hour from the ``FAILURES_PER_HOUR``th on)."""
    if failures <= 0:
        return 0.0
    delay = min(BACKOFF_MIN_S * float(2 ** min(failures - 1, 20)), BACKOFF_MAX_S)
    return max(delay, 3600.0) if failures >= FAILURES_PER_HOUR else delay


def needs_certificate(cert: CertInfo | None, now: datetime) -> bool:
    """No certificate, or one that expires within ``RENEW_BEFORE``."""
    return cert is None or cert.not_after - now <= RENEW_BEFORE


def plan_due(names: Iterable[str], certs: Mapping[str, CertInfo],
             next_attempts: Mapping[str, datetime | None], now: datetime, *,
             force: Collection[str] = ()) -> list[str]:
    """The names to ask the CA for now, in order: those in ``force``, and those that need a
    certificate and are not backing off."""
    due = []
    for name in names:
        if name in force:
            due.append(name)
            continue
        if not needs_certificate(certs.get(name), now):
            continue
        not_before = next_attempts.get(name)
        if not_before is not None and not_before > now:
            continue
        due.append(name)
    return due


def build_name_state(cert: CertInfo | None, *, working: bool, failed: bool,
                     now: datetime) -> str:
    """``valid`` while a certificate serves (``renewing`` while a new one is being asked
    for); without one ``pending`` until an attempt fails, then ``failed``."""
    usable = cert is not None and cert.not_after > now
    if usable:
        return RENEWING if working else VALID
    if working:
        return PENDING
    return FAILED if failed else PENDING


def describe_name(name: str, app: str | None, state: str, cert: CertInfo | None,
                  last_error: str | None, next_attempt: str | None) -> dict[str, Any]:
    return {"name": name, "app": app, "state": state,
            "not_after": cert.not_after.isoformat() if cert else None,
            "issuer": cert.issuer if cert else None,
            "serial": cert.serial if cert else None,
            "last_error": last_error, "next_attempt": next_attempt}
