"""Release numbers: an ``int`` from the request that names one to the hub that runs it.

The store numbers an app's releases from 1. A person or the API may write one as text
(``"3"``); ``parse_release_number`` reads it once, at the edge, and from there on it stays an
``int`` (``Deploy(3)``, ``Rollback(to=2)``, the reconcile plan's steps). Only unit names
write it as text, at the head of an instance token (``3``, ``3.1``, ``3_worker_2``; see
``bindrop.domain.processes``).
"""

from __future__ import annotations

from bindrop.errors import InvalidInput

#: Release numbers are SQLite integers: positive and below 2**63.
RELEASE_NUMBER_LIMIT = 2**63


def parse_release_number(value: object, what: str = "release") -> int:
    """A release number from a person or a JSON body: an int or a string of digits, from 1.

    ``what`` names the field in the message (``release``, ``to``). ``InvalidInput`` (saying
    where to find one) for anything else: zero, negatives, bools, fractions, other text.
    """
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if (isinstance(value, bool) or not isinstance(value, int)
            or not 0 < value < RELEASE_NUMBER_LIMIT):
        raise InvalidInput(f"{what} {value!r} is not valid: use a release number such as 3 "
                           "(see `bindrop releases APP`)")
    return value

