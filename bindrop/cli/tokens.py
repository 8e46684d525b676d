"""``bindrop token create|list|revoke``: API tokens for TCP access."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from bindrop.cli.remote import emit, json_option, remote, table

Run = Callable[..., Any]


@click.group()
def token() -> None:
    """API tokens: what a laptop or CI sends to reach the server over TCP.

    Example: T=$(bindrop token create ci --expires 90d)
    """


@token.command()
@click.argument("name")
@click.option("--read-only", is_flag=True, help="It can read and stream, not change anything.")
@click.option("--expires", metavar="DURATION", help="Lifetime such as 30d, 12h or 1y "
                                                    "(default: never).")
@json_option
@remote
def create(name: str, read_only: bool, expires: str | None, as_json: bool, run: Run) -> None:
    """Create token NAME and print it alone on stdout; it is never shown again.

    Example: bindrop token create laptop --read-only --expires 90d
    """
    created = run(lambda c: c.create_token(name, read_only=read_only, expires=expires))
    emit(created, as_json, lambda c: str(c["token"]))


@token.command(name="list")
@json_option
@remote
def list_tokens(as_json: bool, run: Run) -> None:
    """List tokens: name, scope, created, last used (never the secrets).

    Example: bindrop token list --json
    """
    emit(run(lambda c: c.tokens()), as_json, _print_tokens)


def _print_tokens(tokens: list[dict[str, Any]]) -> None:
    table(["NAME", "SCOPE", "CREATED", "LAST USED", "EXPIRES", "REVOKED"],
          [[t["name"], t["scope"], t["created_at"][:19], (t["last_used_at"] or "never")[:19],
            (t["expires_at"] or "never")[:19], "yes" if t["revoked"] else "no"]
           for t in tokens])


@token.command()
@click.argument("name")
@json_option
@remote
def revoke(name: str, as_json: bool, run: Run) -> None:
    """Revoke token NAME: it stops working at once.

    Example: bindrop token revoke laptop
    """
    emit(run(lambda c: c.revoke_token(name)), as_json, lambda _: f"token {name} revoked")
