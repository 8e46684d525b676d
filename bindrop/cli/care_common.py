"""What the server-care commands (backup, disk, gc) share: settings from the environment and
``/etc/bindrop/care.env``, the hub's API (the local socket by default), events.

These commands run on the server as root (a timer, or a person with a shell there): they read
files directly and reach the hub only through the client.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from bindrop.care.config import CareSettings, load_care_settings
from bindrop.cli.remote import call, server_options
from bindrop.client.client import Client
from bindrop.errors import BindropError
from bindrop.settings import Settings

T = TypeVar("T")
log = logging.getLogger("bindrop.care")


@dataclass(frozen=True)
class CareContext:
    settings: Settings
    care: CareSettings
    server: str
    token: str | None

    def call(self, action: Callable[[Client], Awaitable[T]]) -> T:
        return call(self.server, self.token, action)

    def record(self, kind: str, message: str, *, app: str | None = None,
               data: Mapping[str, Any] | None = None) -> bool:
        """Record an event with the hub; a hub that cannot be reached is reported on stderr
        and does not fail the command (the backup itself is what matters)."""
        try:
            self.call(lambda c: c.record_event(kind, message, app=app, data=data))
            return True
        except BindropError as exc:
            click.echo(f"warning: could not record the {kind} event with the hub: "
                       f"{exc.message}", err=True)
            return False


def care_context(server: str | None, token: str | None) -> CareContext:
    settings = Settings.from_env(os.environ)
    care = load_care_settings(settings, os.environ)
    return CareContext(settings, care, server or f"unix:{settings.control_socket}", token)


F = TypeVar("F", bound=Callable[..., Any])


def care_options(command: F) -> F:
    """``--server``/``--token``: the hub that records events (default: this server's socket)."""
    return server_options(command)
