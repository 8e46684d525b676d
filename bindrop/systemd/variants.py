"""Typed properties to D-Bus Variants, and Variants back to plain values. Pure functions.

Every Variant is built from the signature that came with the property, never guessed from
the Python value: systemd answers a wrong type with ``System.Error.ENXIO`` naming no property
(systemd-lab.md), so a mismatch is caught here, by property name, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dbus_fast import Variant
from dbus_fast.errors import DBusFastError
from dbus_fast.signature import SignatureType, get_signature_tree

from bindrop.errors import InvalidInput
from bindrop.systemd.types import UnitProperty


def build_variant(prop: UnitProperty) -> Variant:
    """The Variant for one property. Raises ``InvalidInput`` naming the property on a mismatch.

    Tuples are accepted where the signature wants an array (D-Bus ``a``), so frozen values
    work; a bool is refused where an integer is due; everything else must already be in
    dbus-fast's shape (bytes for ``ay``, dicts for ``a{..}``, Variants for ``v``).
    """
    try:
        tree = get_signature_tree(prop.signature)
        if len(tree.types) != 1:
            raise ValueError("a property signature must be one complete type")
        return Variant(tree, _shape(tree.types[0], prop.value))
    except (DBusFastError, ValueError, TypeError) as exc:
        shown = repr(prop.value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise InvalidInput(
            f"unit property {prop.name} does not fit its D-Bus signature "
            f"{prop.signature!r}: {exc} (value {shown})"
        ) from exc


def build_property_array(props: Iterable[UnitProperty]) -> list[list[Any]]:
    """The ``a(sv)`` argument of ``StartTransientUnit``, in the given order."""
    out: list[list[Any]] = []
    seen: set[str] = set()
    for prop in props:
        if prop.name in seen:
            raise InvalidInput(f"unit property {prop.name} is given twice")
        seen.add(prop.name)
        out.append([prop.name, build_variant(prop)])
    return out


_INTEGER_TOKENS = frozenset("ynqiuxth")


def _shape(type_: SignatureType, value: object) -> object:
    token = type_.token
    if token in _INTEGER_TOKENS and isinstance(value, bool):
        # dbus-fast would send True as 1: a bool where systemd wants a number is a bug
        # (RestrictNamespaces is a "t" bit mask, not a "b").
        raise TypeError(f"a bool is not a D-Bus integer ({token!r})")
    if token == "a":
        child = type_.children[0]
        if child.token == "{":
            if not isinstance(value, Mapping):
                return value  # let Variant's own check produce the message
            key_t, val_t = child.children
            return {_shape(key_t, k): _shape(val_t, v) for k, v in value.items()}
        if child.token == "y":
            return value
        if isinstance(value, list | tuple):
            return [_shape(child, item) for item in value]
        return value
    if token == "(" and isinstance(value, list | tuple):
        if len(value) != len(type_.children):
            return value
        return [_shape(t, v) for t, v in zip(type_.children, value, strict=True)]
    return value


def unwrap(value: Any) -> Any:
    """A value read from D-Bus with every Variant replaced by its plain value, recursively."""
    if isinstance(value, Variant):
        return unwrap(value.value)
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def unwrap_properties(props: Mapping[str, Any]) -> dict[str, Any]:
    """A ``GetAll`` / ``PropertiesChanged`` dict of Variants as plain values."""
    return {name: unwrap(value) for name, value in props.items()}
