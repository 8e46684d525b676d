"""``bindrop tls setup|list|renew|off``: automatic HTTPS, through the API (works remotely)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bindrop.cli.remote import emit, json_option, remote, table

Run = Callable[..., Any]


@click.group()
def tls() -> None:
    """Automatic HTTPS: certificates from an ACME CA (Let's Encrypt) for every app host.

    Example: bindrop tls setup --email you@example.com
    """


@tls.command()
@click.option("--email", required=True, envvar="BINDROP_TLS_EMAIL",
              help="Where the CA may write about your certificates. [env: BINDROP_TLS_EMAIL]")
@click.option("--directory", metavar="URL", envvar="BINDROP_TLS_DIRECTORY",
              help="The ACME directory (default: Let's Encrypt production).")
@click.option("--directory-ca", metavar="FILE", envvar="BINDROP_TLS_DIRECTORY_CA",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A CA bundle the server trusts for the directory itself (a test CA such "
                   "as pebble); read here, stored on the server.")
@click.option("--staging", is_flag=True, help="Use Let's Encrypt's staging CA (untrusted "
                                              "certificates, generous rate limits).")
@json_option
@remote
def setup(email: str, directory: str | None, directory_ca: Path | None, staging: bool,
          as_json: bool, run: Run) -> None:
    """Turn automatic HTTPS on: every app host a CA can reach gets a certificate.

    Example: bindrop tls setup --email ops@example.com --staging
    """
    ca = directory_ca.read_text() if directory_ca is not None else None
    answer = run(lambda c: c.setup_tls(email, directory=directory, directory_ca=ca,
                                       staging=staging))
    emit(answer, as_json, lambda a: f"automatic HTTPS on: {a['directory']} for {a['email']}; "
                                    f"{len(a['names'])} names (bindrop tls list)")


@tls.command(name="list")
@json_option
@remote
def list_names(as_json: bool, run: Run) -> None:
    """Each name with its state (pending, valid, renewing, failed), expiry, issuer, last error.

    Example: bindrop tls list --json
    """
    emit(run(lambda c: c.tls()), as_json, _print_state)


def _print_state(answer: dict[str, Any]) -> None:
    if not answer["enabled"]:
        click.echo("automatic HTTPS is off (bindrop tls setup --email you@example.com)")
    _print_names(answer["names"])


def _print_names(names: list[dict[str, Any]]) -> None:
    table(["NAME", "APP", "STATE", "NOT AFTER", "ISSUER", "LAST ERROR"],
          [[n["name"], n["app"], n["state"], (n["not_after"] or "")[:19] or None,
            _short(n["issuer"], 40), _short(n["last_error"], 80)] for n in names])


def _short(text: str | None, width: int) -> str | None:
    if text is None or len(text) <= width:
        return text
    return text[: width - 1] + "…"


@tls.command()
@click.argument("name", required=False)
@click.option("--force", is_flag=True, help="Even a certificate far from expiry, and past "
                                            "a failure's backoff.")
@click.option("--when-enabled", is_flag=True, help="Do nothing when automatic HTTPS is off "
                                                   "(what bindrop-tls.service runs).")
@json_option
@remote
def renew(name: str | None, force: bool, when_enabled: bool, as_json: bool, run: Run) -> None:
    """Ask the CA now for every name that is due (or NAME only); what bindrop-tls.timer runs.

    Example: bindrop tls renew blog.example.com --force
    """
    if when_enabled and not run(lambda c: c.tls())["enabled"]:
        emit([], as_json, lambda _: "automatic HTTPS is off: nothing to renew")
        return
    names = run(lambda c: c.renew_tls(name, force=force))
    emit(names, as_json, _print_names)
    if not as_json and any(n["state"] == "failed" for n in names):
        raise SystemExit(1)


@tls.command()
@json_option
@remote
def off(as_json: bool, run: Run) -> None:
    """Stop asking for certificates; those already issued keep serving until they expire.

    Example: bindrop tls off
    """
    emit(run(lambda c: c.disable_tls()), as_json,
         lambda _: "automatic HTTPS off; issued certificates keep serving")
