"""Calendar specs (``OnCalendar=``) as systemd itself reads them."""

from __future__ import annotations

import subprocess

from bindrop.errors import InvalidInput

ANALYZE_TIMEOUT_S = 10


def parse_calendar(text: str) -> str:
    """A systemd calendar spec ("daily", "*-*-* 03:00", "Mon *-*-* 04:00") as given, checked
    by ``systemd-analyze calendar`` (when it is installed); ``InvalidInput`` otherwise."""
    value = text.strip() if isinstance(text, str) else ""
    if not value or len(value) > 200 or any(ord(c) < 0x20 for c in value) or "@" in value:
        raise InvalidInput(f"{text!r} is not a systemd calendar spec such as daily, hourly "
                           "or '*-*-* 03:00'")
    try:
        proc = subprocess.run(["systemd-analyze", "calendar", value], capture_output=True,
                              text=True, check=False, timeout=ANALYZE_TIMEOUT_S)
    except FileNotFoundError:
        return value
    if proc.returncode != 0:
        raise InvalidInput(f"{text!r} is not a systemd calendar spec such as daily, hourly "
                           f"or '*-*-* 03:00': {proc.stderr.strip()}")
    return value
