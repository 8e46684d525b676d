"""One size table and one byte formatter (bindrop.domain.sizes): each reader keeps its form.

The three styles are what the unit limits, the CLI and the dashboard printed before they shared
one function; these tables pin those outputs.
"""

from __future__ import annotations

import pytest

from bindrop.domain.limits import parse_memory
from bindrop.domain.sizes import SIZE_FACTORS, ByteStyle, format_bytes

K, M, G, T = 1024, 1024**2, 1024**3, 1024**4


@pytest.mark.parametrize(("size", "text"), [
    (0, "0B"), (1, "1B"), (512, "512B"), (1023, "1023B"), (K, "1K"), (1536, "1.5K"),
    (256 * M, "256M"), (1536 * M, "1.5G"), (G - 1, "1023.9M"), (2 * T, "2T"),
    (5 * 1024**5, "5120T"), (None, "-"), (-1, "-")])
def test_the_exact_style_writes_limits_as_people_type_them(size: object, text: str) -> None:
    assert format_bytes(size, "exact") == text


@pytest.mark.parametrize(("size", "text"), [
    (0, "0B"), (512, "512B"), (1023, "1023B"), (K, "1.0K"), (1536, "1.5K"),
    (256 * M, "256.0M"), (1536 * M, "1.5G"), (G - 1, "1024.0M"), (2 * T, "2048.0G"),
    (None, "-"), (True, "-")])
def test_the_rounded_style_is_the_clis_one_decimal_up_to_gigabytes(size: object,
                                                                   text: str) -> None:
    assert format_bytes(size) == format_bytes(size, "rounded") == text


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (256 * M, "256.0 MiB"),
    (123456789, "117.7 MiB"), (2.5 * G, "2.5 GiB"), (3.7, "4 B"),
    (None, "-"), (True, "-"), (-1, "-"), ("12", "-"), (5 * 1024**5, "5120.0 TiB")])
def test_the_iec_style_is_the_dashboards_with_unit_names(size: object, text: str) -> None:
    assert format_bytes(size, "iec") == text


@pytest.mark.parametrize("size", [1, K, 512 * K, 256 * M, 3 * G, 2 * T])
def test_parse_memory_reads_back_the_exact_style_of_exact_sizes(size: int) -> None:
    assert parse_memory(format_bytes(size, "exact")) == size


@pytest.mark.parametrize("style", ["exact", "rounded", "iec"])
def test_every_style_agrees_with_the_one_size_table(style: ByteStyle) -> None:
    for suffix in ("K", "M", "G"):
        assert format_bytes(SIZE_FACTORS[suffix], style).startswith("1")
        assert suffix in format_bytes(SIZE_FACTORS[suffix], style)
