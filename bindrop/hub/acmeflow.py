"""One ACME order, start to finish, on certbot's ``acme`` library (blocking: run it in a
thread). Nothing here is hand-made JOSE: ``acme`` signs, ``josepy`` holds the key.

``issue`` registers the account (or finds it: the same key gives the same account), orders a
certificate for one name, answers its HTTP-01 challenge through ``publish`` (the hub puts the
token in every proxy's memory and returns once they serve it), waits for the CA, and returns
the chain with the new private key. Any failure is an ``AcmeFailed`` whose message is the CA's
own reason ("... connection refused", "DNS problem: NXDOMAIN ...") for the person who must fix
it.
"""

from __future__ import annotations

import datetime
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from bindrop.errors import AcmeFailed
from bindrop.hub.certfiles import new_private_key_pem

USER_AGENT = "bindrop"
#: How long the CA may take to validate and issue one order.
ORDER_TIMEOUT = 90.0
#: Each HTTP request to the CA.
REQUEST_TIMEOUT = 30.0

#: token -> key authorization, the answers the proxies serve (empty: withdraw them).
Publish = Callable[[Mapping[str, str]], None]


@dataclass(frozen=True)
class Issued:
    chain_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class Account:
    directory: str
    email: str
    key_pem: bytes
    #: A CA bundle to trust for the directory itself (a test CA); None: the system's.
    ca_bundle: Path | None = None


def _account_key(pem: bytes) -> JWKEC:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise AcmeFailed("the ACME account key is not an ECDSA key; move "
                         "/etc/bindrop/tls/acme/account.key away to make a new one")
    return JWKEC(key=key)


def network(account: Account) -> client.ClientNetwork:
    """The signed HTTP channel to the CA (close its ``session`` when done)."""
    # verify_ssl goes to requests' ``verify``, which also takes a CA bundle's path.
    verify: Any = str(account.ca_bundle) if account.ca_bundle else True
    net = client.ClientNetwork(_account_key(account.key_pem), alg=ES256,
                               user_agent=USER_AGENT, verify_ssl=verify,
                               timeout=int(REQUEST_TIMEOUT))
    # One connection per request: an order is a dozen requests a few times a day, and no
    # pooled socket to the CA outlives its request (nothing for the garbage collector to find).
    net.session.headers["Connection"] = "close"
    return net


def connect(account: Account, net: client.ClientNetwork) -> client.ClientV2:
    """A client logged in to the CA with ``account`` (registered on first use)."""
    directory = client.ClientV2.get_directory(account.directory, net)
    acme = client.ClientV2(directory, net=net)
    registration = messages.NewRegistration.from_data(email=account.email,
                                                      terms_of_service_agreed=True)
    try:
        net.account = acme.new_account(registration)
    except errors.ConflictError as exc:  # this key's account exists: use it
        net.account = messages.RegistrationResource(uri=exc.location,
                                                    body=messages.Registration())
    return acme


def issue(account: Account, name: str, publish: Publish) -> Issued:
    """A certificate for ``name`` (ECDSA P-256 key). ``AcmeFailed`` with the CA's reason."""
    net = network(account)
    try:
        return _issue(account, net, name, publish)
    except Exception as exc:
        failure = _failure(exc, account, name)
        if failure is None:
            raise
        # The failure outlives this call (the hub keeps it, the events quote it); the
        # frames of the requests behind it, and any socket they hold, must not: dropped now,
        # not when the garbage collector finds their cycle.
        _clear_frames(exc)
    finally:
        net.session.close()
    raise failure  # outside ``except``: it carries no context


def _failure(exc: Exception, account: Account, name: str) -> AcmeFailed | None:
    """What an order's exception says to the operator; None for a bug (raised as it is)."""
    if isinstance(exc, AcmeFailed):
        return AcmeFailed(exc.message)
    if isinstance(exc, errors.ValidationError):
        return AcmeFailed(describe_validation(exc, name))
    if isinstance(exc, messages.Error):
        return AcmeFailed(describe_error(exc, name))
    if isinstance(exc, errors.TimeoutError):
        return AcmeFailed(f"the CA did not finish the order for {name} within "
                          f"{ORDER_TIMEOUT:g} s")
    if isinstance(exc, (requests.RequestException, OSError)):
        return AcmeFailed(f"the CA at {account.directory} could not be reached: "
                          f"{_short(exc)}")
    if isinstance(exc, errors.Error):
        return AcmeFailed(f"the CA's answer was not understood: {_short(exc)}")
    return None


def _clear_frames(exc: BaseException) -> None:
    """Drop the locals of every frame behind ``exc`` and the exceptions it chains (causes
    and contexts both)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        traceback.clear_frames(item.__traceback__)
        todo += (item.__cause__, item.__context__)


def _issue(account: Account, net: client.ClientNetwork, name: str,
           publish: Publish) -> Issued:
    acme = connect(account, net)
    key_pem = new_private_key_pem()
    csr_pem = crypto_util.make_csr(key_pem, [name])
    order = acme.new_order(csr_pem)
    answers: dict[str, str] = {}
    pending: list[messages.ChallengeBody] = []
    for authz in order.authorizations:
        if authz.body.status == messages.STATUS_VALID:
            continue  # validated recently (the CA reuses authorizations)
        for challenge in authz.body.challenges:
            if isinstance(challenge.chall, challenges.HTTP01):
                _response, validation = challenge.response_and_validation(acme.net.key)
                answers[challenge.chall.encode("token")] = validation
                pending.append(challenge)
                break
        else:
            raise AcmeFailed(f"the CA offers no HTTP-01 challenge for {name}")
    publish(answers)
    try:
        for challenge in pending:
            acme.answer_challenge(challenge, challenge.response(acme.net.key))
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=ORDER_TIMEOUT)
        done = acme.poll_and_finalize(order, deadline=deadline)
    finally:
        publish({})
    return Issued(done.fullchain_pem.encode(), key_pem)


#: What to do, by the CA's error code (RFC 8555 section 6.7), ahead of the CA's own words.
HINTS = {
    "dns": "DNS for {name} does not resolve for the CA: add an A or AAAA record pointing "
           "to this server",
    "connection": "the CA could not connect to {name} on port 80: check that its DNS points "
                  "to this server and that port 80 is open",
    "unauthorized": "{name} answered the CA with something else: its DNS may point elsewhere",
    "incorrectResponse": "{name} answered the CA with something else: its DNS may point "
                         "elsewhere",
    "caa": "a CAA record of {name} forbids this CA",
    "rateLimited": "the CA's rate limit for {name} was reached; bindrop tries again later",
}


def describe_error(error: messages.Error, name: str) -> str:
    """The CA's reason, after what to do about it when its code is a known one. Pure."""
    detail = error.detail or error.description or str(error.typ)
    code = error.code or ""
    hint = HINTS.get(code)
    said = f"{detail} ({code or error.typ})"
    return f"{hint.format(name=name)} (the CA says: {said})" if hint else said


def describe_validation(exc: errors.ValidationError, name: str) -> str:
    reasons = []
    for authz in exc.failed_authzrs:
        for challenge in authz.body.challenges:
            if challenge.error is not None:
                reasons.append(describe_error(challenge.error, name))
    return "; ".join(reasons) or f"the CA could not validate {name}"


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
