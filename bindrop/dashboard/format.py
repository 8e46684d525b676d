"""How the dashboard writes numbers and times for people. Pure; used as template filters."""

from __future__ import annotations

from datetime import UTC, datetime

from bindrop.domain.sizes import SIZE_FACTORS


def format_duration(seconds: float) -> str:
    """``3725`` -> ``"1h 2m"``: the two largest units, for uptimes."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{u}" for n, u in parts if n][:2]
    return " ".join(shown) or "0s"


def parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_uptime(since: object, now: datetime | None = None) -> str:
    """Time since an ISO 8601 moment (the API's ``active_since``); ``"-"`` for none."""
    moment = parse_time(since)
    if moment is None:
        return "-"
    return format_duration(((now or datetime.now(UTC)) - moment).total_seconds())


def format_time(text: object) -> str:
    """An API timestamp as ``2026-11-28 08:05:34 UTC``; ``"-"`` for none."""
    moment = parse_time(text)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def format_cpu(nsec: object) -> str:
    """CPU time used, from systemd's ``CPUUsageNSec``; ``"-"`` where systemd has none."""
    if isinstance(nsec, bool) or not isinstance(nsec, int):
        return "-"
    return f"{nsec / 1e9:.1f} s"


def format_limit(value: object, kind: str) -> str:
    """A limit as the CLI takes it back: memory ``256M``, cpu ``50%``, tasks ``64``; "" for
    none (an empty field in a form means no limit)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return ""
    if kind == "memory":
        for unit in ("G", "M", "K"):
            size = SIZE_FACTORS[unit]
            if value % size == 0:
                return f"{value // size}{unit}"
        return str(value)
    if kind == "cpu":
        return f"{value}%"
    return str(value)


def app_url(host: str, scheme: str, port: int | None) -> str:
    """Where an app answers through the same proxy as the dashboard: its host with the
    dashboard's own scheme and port (``host`` may carry a path prefix)."""
    default = {"http": 80, "https": 443}.get(scheme)
    name, slash, path = host.partition("/")
    netloc = name if port in (None, default) else f"{name}:{port}"
    return f"{scheme}://{netloc}/{path if slash else ''}"
