"""Tests of cutting broadcasts into ``*NONCE*INDEX*COUNT*DATA`` parts."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from argus.broadcast.framing import frame_message
from argus.broadcast.framing import join_parts

NONCE = 1
HEADER = re.compile(r"\*(\d+)\*(\d+)\*(\d+)\*")


def header_size(nonce: int, index: int, count: int) -> int:
    return len(f"*{nonce}*{index}*{count}*")


def ascii_capacity(count: int, max_bytes: int, nonce: int) -> int:
    """Return how many ASCII bytes ``count`` parts of ``max_bytes`` carry."""
    return sum(max_bytes - header_size(nonce, index, count) for index in range(count))


def fewest_ascii_parts(size: int, max_bytes: int, nonce: int) -> int:
    count = 1
    while ascii_capacity(count, max_bytes, nonce) < size:
        count += 1
    return count


def parse(part: str) -> tuple[int, int, int, str]:
    match = HEADER.match(part)
    assert match is not None, part[:40]
    nonce, index, count = (int(group) for group in match.groups())
    return nonce, index, count, part[match.end() :]


def check_parts(parts: list[str], data: str, max_bytes: int) -> None:
    """Assert every framing invariant of ``parts`` cut from ``data``."""
    parsed = [parse(part) for part in parts]

    assert len({nonce for nonce, _, _, _ in parsed}) == 1
    assert [index for _, index, _, _ in parsed] == list(range(len(parts)))
    assert {count for _, _, count, _ in parsed} == {len(parts)}
    for part in parts:
        assert len(part.encode()) <= max_bytes
    assert "".join(piece for _, _, _, piece in parsed) == data
    assert join_parts(parts) == data


@pytest.mark.parametrize(
    "data",
    [
        "hello",
        "é" * 300,
        "日本" * 200,
        "𝄞😀" * 150,
        "mixed é 日本 𝄞 😀 ascii " * 40,
        "*1*0*1*looks like a header*",
        "line\nbreak\r\n\x00",
    ],
)
def test_frame_round_trip(data: str) -> None:
    parts = frame_message(data, 64, nonce=NONCE)

    check_parts(parts, data, 64)


def test_frame_single_part() -> None:
    parts = frame_message('{"run": 1}', 4096, nonce=12345)

    assert parts == ['*12345*0*1*{"run": 1}']


def test_frame_empty_data() -> None:
    parts = frame_message("", 64, nonce=7)

    assert parts == ["*7*0*1*"]
    assert join_parts(parts) == ""


def test_frame_random_nonce() -> None:
    parts = frame_message("x" * 500, 64)

    nonces = {parse(part)[0] for part in parts}
    assert len(nonces) == 1
    assert 0 <= nonces.pop() < 2**32
    check_parts(parts, "x" * 500, 64)


def test_frame_exact_boundary() -> None:
    budget = 64 - header_size(NONCE, 0, 1)

    fitting = frame_message("a" * budget, 64, nonce=NONCE)
    overflowing = frame_message("a" * (budget + 1), 64, nonce=NONCE)

    assert len(fitting) == 1
    assert len(fitting[0].encode()) == 64
    assert len(overflowing) == 2
    check_parts(overflowing, "a" * (budget + 1), 64)


def test_frame_multibyte_boundary() -> None:
    budget = 64 - header_size(NONCE, 0, 1)
    data = "a" * (budget - 2) + "é"

    parts = frame_message(data, 64, nonce=NONCE)

    assert len(parts) == 1
    assert len(parts[0].encode()) == 64


@pytest.mark.parametrize("offset", [1, 2, 3])
def test_frame_four_byte_straddle(offset: int) -> None:
    # The 4-byte character starts ``offset`` bytes before the end of part 0.
    budget = 64 - header_size(NONCE, 0, 2)
    data = "a" * (budget - offset) + "𝄞" + "b" * 20

    parts = frame_message(data, 64, nonce=NONCE)

    assert len(parts) == 2
    assert parse(parts[0])[3] == "a" * (budget - offset)
    assert parse(parts[1])[3] == "𝄞" + "b" * 20
    check_parts(parts, data, 64)


def test_frame_count_nine_to_ten() -> None:
    nine = ascii_capacity(9, 64, NONCE)

    assert len(frame_message("a" * nine, 64, nonce=NONCE)) == 9
    parts = frame_message("a" * (nine + 1), 64, nonce=NONCE)

    assert len(parts) == 10
    assert parse(parts[-1])[1:3] == (9, 10)
    check_parts(parts, "a" * (nine + 1), 64)


def test_frame_count_ninety_nine_to_hundred() -> None:
    ninety_nine = ascii_capacity(99, 256, NONCE)

    assert len(frame_message("a" * ninety_nine, 256, nonce=NONCE)) == 99
    parts = frame_message("a" * (ninety_nine + 1), 256, nonce=NONCE)

    assert len(parts) == 100
    assert parse(parts[-1])[1:3] == (99, 100)
    check_parts(parts, "a" * (ninety_nine + 1), 256)


def test_frame_count_skips_hundred() -> None:
    # With 64-byte parts, the extra COUNT digit costs 100 bytes across the
    # parts, more than a 100th part adds, so 99 full parts jump to 101.
    ninety_nine = ascii_capacity(99, 64, NONCE)
    assert ascii_capacity(100, 64, NONCE) < ninety_nine

    parts = frame_message("a" * (ninety_nine + 1), 64, nonce=NONCE)

    assert len(parts) == 101
    check_parts(parts, "a" * (ninety_nine + 1), 64)


@pytest.mark.parametrize(
    ("max_bytes", "sizes"),
    [
        (64, range(480, 620, 7)),
        (64, range(5380, 5480, 3)),
        (256, range(24400, 24700, 11)),
    ],
)
def test_frame_fewest_parts(max_bytes: int, sizes: range) -> None:
    for size in sizes:
        data = "a" * size

        parts = frame_message(data, max_bytes, nonce=NONCE)

        assert len(parts) == fewest_ascii_parts(size, max_bytes, NONCE), size
        check_parts(parts, data, max_bytes)


def test_frame_multibyte_across_count_digits() -> None:
    data = "日本😀é" * 400

    parts = frame_message(data, 64, nonce=4_294_967_295)

    assert len(parts) > 100
    check_parts(parts, data, 64)


def test_frame_too_small_rejected() -> None:
    with pytest.raises(ValueError):
        frame_message("abc", 10, nonce=4_294_967_295)


def test_join_any_order() -> None:
    data = "é" * 500
    parts = frame_message(data, 64, nonce=NONCE)
    shuffled = parts[:]
    random.Random(0).shuffle(shuffled)

    assert join_parts(shuffled) == data


def test_join_mixed_nonces_rejected() -> None:
    first = frame_message("a" * 200, 64, nonce=1)
    second = frame_message("b" * 200, 64, nonce=2)

    with pytest.raises(ValueError):
        join_parts([first[0], *second[1:]])


def test_join_missing_part_rejected() -> None:
    parts = frame_message("a" * 500, 64, nonce=NONCE)

    for missing in [0, len(parts) // 2, len(parts) - 1]:
        incomplete = parts[:missing] + parts[missing + 1 :]
        with pytest.raises(ValueError):
            join_parts(incomplete)


def test_join_mixed_counts_rejected() -> None:
    with pytest.raises(ValueError):
        join_parts(["*1*0*2*a", "*1*1*3*b"])


@pytest.mark.parametrize("part", ["plain text", "*1*0*", "*a*0*1*data", "1*0*1*x"])
def test_join_malformed_rejected(part: str) -> None:
    with pytest.raises(ValueError):
        join_parts([part])


def test_join_empty_rejected() -> None:
    with pytest.raises(ValueError):
        join_parts([])


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    text=st.text(max_size=600),
    repeat=st.integers(min_value=1, max_value=300),
    # Half the draws favour small parts, so that most examples need several.
    max_bytes=st.integers(min_value=64, max_value=160)
    | st.integers(min_value=64, max_value=5120),
    nonce=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_frame_property(text: str, repeat: int, max_bytes: int, nonce: int) -> None:
    data = text * repeat

    parts = frame_message(data, max_bytes, nonce=nonce)

    check_parts(parts, data, max_bytes)
    assert {parse(part)[0] for part in parts} == {nonce}
