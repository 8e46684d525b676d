"""Variants are built only from the signature given with each property."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from dbus_fast import Variant

from bindrop.errors import InvalidInput
from bindrop.systemd.variants import build_property_array, build_variant, unwrap, unwrap_properties


class Prop(NamedTuple):
    name: str
    signature: str
    value: object


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        (Prop("Type", "s", "exec"), Variant("s", "exec")),
        (Prop("MemoryMax", "t", 2**64 - 1), Variant("t", 2**64 - 1)),
        (Prop("StartLimitBurst", "u", 5), Variant("u", 5)),
        (Prop("KillSignal", "i", -1), Variant("i", -1)),
        (Prop("PrivateTmp", "b", True), Variant("b", True)),
        (Prop("RestrictNamespaces", "t", 0), Variant("t", 0)),
        (Prop("Environment", "as", ["PORT=1", "A=$$B"]), Variant("as", ["PORT=1", "A=$$B"])),
        (
            Prop("ExecStart", "a(sasb)", [["/bin/app", ["/bin/app", "-v"], False]]),
            Variant("a(sasb)", [["/bin/app", ["/bin/app", "-v"], False]]),
        ),
        (Prop("SuccessExitStatus", "(aiai)", ([143], [])), Variant("(aiai)", [[143], []])),
        (Prop("LogExtraFields", "aay", [b"APP=blog"]), Variant("aay", [b"APP=blog"])),
        (Prop("TimersCalendar", "a(ss)", [("OnCalendar", "daily")]),
         Variant("a(ss)", [["OnCalendar", "daily"]])),
    ],
)
def test_variant_uses_the_given_signature(prop: Prop, expected: Variant) -> None:
    variant = build_variant(prop)
    assert variant.signature == prop.signature
    assert variant == expected


def test_tuples_are_accepted_where_an_array_is_due() -> None:
    prop = Prop("ExecStart", "a(sasb)", (("/bin/app", ("/bin/app",), False),))
    assert build_variant(prop).value == [["/bin/app", ["/bin/app"], False]]


def test_a_dict_value_is_shaped_for_a_dict_signature() -> None:
    assert build_variant(Prop("X", "a{sv}", {"a": Variant("s", "b")})).value == {
        "a": Variant("s", "b")
    }


@pytest.mark.parametrize(
    "prop",
    [
        Prop("PrivateTmp", "b", 1),  # an int is not a D-Bus boolean
        Prop("RestrictNamespaces", "t", True),
        Prop("MemoryMax", "t", -1),
        Prop("MemoryMax", "t", "512M"),
        Prop("Environment", "as", "PORT=1"),
        Prop("ExecStart", "a(sasb)", [["/bin/app", "/bin/app", False]]),
        Prop("Type", "zz", "exec"),
        Prop("Type", "ss", "exec"),
    ],
)
def test_a_mismatch_is_invalid_input_naming_the_property(prop: Prop) -> None:
    with pytest.raises(InvalidInput) as caught:
        build_variant(prop)
    assert prop.name in caught.value.message
    assert prop.signature in caught.value.message


def test_property_array_keeps_order() -> None:
    props = [Prop("Type", "s", "exec"), Prop("Description", "s", "x"), Prop("MemoryMax", "t", 1)]
    array = build_property_array(props)
    assert [name for name, _ in array] == ["Type", "Description", "MemoryMax"]
    assert all(isinstance(v, Variant) for _, v in array)


def test_property_array_refuses_a_name_given_twice() -> None:
    with pytest.raises(InvalidInput, match="MemoryMax"):
        build_property_array([Prop("MemoryMax", "t", 1), Prop("MemoryMax", "t", 2)])


def test_a_frozen_dataclass_property_works() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Frozen:
        name: str
        signature: str
        value: object

    assert build_variant(Frozen("Type", "s", "exec")) == Variant("s", "exec")


def test_unwrap_replaces_nested_variants() -> None:
    props = {"Job": Variant("(uo)", [0, "/"]), "Env": Variant("as", ["A=1"]),
             "Nested": Variant("v", Variant("s", "x"))}
    assert unwrap_properties(props) == {"Job": [0, "/"], "Env": ["A=1"], "Nested": "x"}
    assert unwrap({"a": [Variant("s", "b")]}) == {"a": ["b"]}
