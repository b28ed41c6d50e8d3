"""Property tests: transformation of generated runs from the real mappings, framing.

Runs are built from the code names of both mapping generations, in three
flavours mixed freely: valid items, near-valid ones (wrong rarities, suffixes,
bad levels, odd spacing, missing fields) and hostile text (markup, control
characters, huge numbers, Unicode, ``__proto__``). Hostile text carries
MARKER, which must never reach the output.
"""

from __future__ import annotations

import json
import math
import random
import re
from functools import cache
from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from argus.broadcast.framing import frame_message
from argus.broadcast.framing import join_parts
from argus.config import PART_MAX_BYTES_LIMIT
from argus.config import PART_MAX_BYTES_MINIMUM
from argus.mappings import Mappings
from argus.mappings import parse_mappings
from argus.transform import transform_run_data
from argus.transform.elements import ELEMENT_NAMES
from argus.transform.extras import EXTRA_RULES_BY_GOD
from argus.transform.parsing import CODE_NAME_SUFFIXES
from argus.transform.rarities import BOON_RARITIES
from argus.transform.rarities import KEEPSAKE_RARITIES
from argus.transform.rarities import WEAPON_RARITIES
from argus.transform.run import EMPTY_MARKERS
from tests import support

MAPPING_FILES = ("ui_mappings.json", "ui_mappings_2025-10.json")
MARKER = "Qz7Marker"
EXAMPLES = 300

# A copied number: 0, or one to three digits without a leading zero.
NUMBER_PATTERN = re.compile(r"0|[1-9][0-9]{0,2}")
ALL_RARITIES = sorted(BOON_RARITIES | WEAPON_RARITIES | KEEPSAKE_RARITIES)
# Keys of the run object that the transformation itself names.
OUTPUT_KEYS = {
    *EMPTY_MARKERS,
    "totalRunItems",
    "otherBoons",
    "totalBoons",
    "weaponBoon",
    "specialBoon",
    "castBoon",
    "sprintBoon",
    "manaBoon",
    "codeName",
    "rarity",
    "name",
    "description",
    "boonType",
    "effects",
    "text",
    "value",
    "extraType",
    "requirements",
    "type",
    "items",
    "fulfilled",
    "vowList",
    "totalFear",
    "level",
    "arcanaList",
    "totalGrasp",
}

HOSTILE_TEXT = [
    f"<img src=x onerror=alert('{MARKER}')>",
    f"<script>{MARKER}</script>",
    f"javascript:{MARKER}",
    f"__proto__{MARKER}",
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
    f"\x00\x1b[31m{MARKER}",
    f"\u202e{MARKER}\u200b",
    f"{MARKER}\ud800",
    f"Zeus{MARKER}Boon",
    f"{MARKER}:{MARKER}",
    f"{MARKER};;{MARKER}",
    "9" * 60,
    "1e999",
    "NaN",
    "Infinity",
    "-0",
    "null",
    "undefined",
    "\u0663",
    "\uff11",
    "ｚｅｕｓ",
    "😀" * 3,
    "&lt;b&gt;",
    '{"a":1}',
]
BAD_LEVELS = ["-1", "1000", "1.5", "0x1", "", "+1", " 1", "1_0", "\u0663", "\uff11"]
WRONG_RARITIES = ["common", "LEGENDARY", "Mythic", "Perfect", "Duo", "", "Rare "]
SEPARATORS = [" ", "  ", "\t", "\n", " \r\n ", "\u00a0", "\u3000"]


@cache
def mapping_document(name: str) -> dict[str, Any]:
    return json.loads((support.SHARED_DIR / "data" / name).read_bytes())


@cache
def mappings_of(name: str) -> Mappings:
    return parse_mappings((support.SHARED_DIR / "data" / name).read_bytes())


@cache
def allowed_strings(name: str) -> frozenset[str]:
    """Every string the mapping file contains, plus the fixed output words."""
    found: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                found.add(key)
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(mapping_document(name))
    found |= set(ALL_RARITIES) | set(ELEMENT_NAMES)
    found |= {"Hammer", "Boon", "Keepsake", "Hex"}
    found |= {rule.extra_type for rule in EXTRA_RULES_BY_GOD.values()}
    return frozenset(found | OUTPUT_KEYS)


def test_marker_absent_from_mappings():
    for name in MAPPING_FILES:
        assert MARKER not in json.dumps(mapping_document(name), ensure_ascii=False)


# --- strategies ----------------------------------------------------------------
#
# Each run is built in one mode: "valid" sends only well-formed items with known
# code names, "near" adds the mistakes a client or a game update could make, and
# "hostile" adds attacker text on top of both.

MODES = ("valid", "near", "hostile")


def hostile() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(HOSTILE_TEXT),
        st.text(max_size=6).map(lambda text: f"{text}{MARKER}{text}"),
    )


def with_mode(mode, valid, near=(), attack=()):
    """Combine a valid strategy with the near-valid and hostile alternatives."""
    choices = [valid]
    if mode in ("near", "hostile"):
        choices += [valid, *near]
    if mode == "hostile":
        choices += [valid, *attack, hostile()]
    return st.one_of(*choices)


def code_name(own: list[str], every: list[str], mode: str) -> st.SearchStrategy[str]:
    """A code name of the section, of another section, suffixed or hostile."""
    suffixed = st.tuples(
        st.sampled_from(own),
        st.lists(st.sampled_from(CODE_NAME_SUFFIXES), min_size=1, max_size=2),
    ).map(lambda pair: pair[0] + "".join(pair[1]))
    return with_mode(mode, st.sampled_from(own), [suffixed, st.sampled_from(every)])


def rarity(known: frozenset[str], mode: str) -> st.SearchStrategy[str]:
    return with_mode(
        mode,
        st.sampled_from(sorted(known)),
        [st.sampled_from(ALL_RARITIES), st.sampled_from(WRONG_RARITIES)],
    )


def level(low: int, high: int, mode: str) -> st.SearchStrategy[str]:
    return with_mode(
        mode,
        st.integers(low, high).map(str),
        [
            st.integers(0, 999).map(lambda number: f"{number:03d}"),
            st.integers(0, 999).map(str),
            st.sampled_from(BAD_LEVELS),
        ],
    )


def pair_item(first, name, mode: str) -> st.SearchStrategy[str]:
    """`First;;Name`, or the same with fields missing or extra."""
    valid = st.tuples(first, name).map(";;".join)
    return with_mode(
        mode,
        valid,
        [
            name,
            name.map(lambda text: ";;" + text),
            first.map(lambda text: text + ";;"),
            st.tuples(first, name, first).map(";;".join),
        ],
        [st.tuples(first, name, hostile()).map(";;".join)],
    )


def join_items(items, separator: str | list[str], mode: str):
    """Join 1 to 12 items, with odd spacing outside the valid mode."""
    if mode == "valid":
        return st.lists(items, min_size=1, max_size=12).map(separator.join)
    return st.tuples(
        st.lists(items, max_size=12),
        st.sampled_from(separator if isinstance(separator, list) else SEPARATORS),
        st.sampled_from(["", " ", "\n "]),
    ).map(lambda parts: parts[2] + parts[1].join(parts[0]) + parts[2])


def section(text, marker: str, mode: str) -> st.SearchStrategy[Any]:
    """Section text, or one of the ways of sending "nothing"."""
    nothing = [marker] if mode == "valid" else [marker, f"  {marker} ", "", "  ", None]
    return st.one_of(text, text, text, st.sampled_from(nothing))


def familiar_text(mappings: Mappings, every: list[str], mode: str):
    familiars = sorted(mappings.familiars)
    traits = sorted(
        {
            effect.trait_code_name
            for familiar in mappings.familiars.values()
            for effect in familiar.effects
        }
    )
    name = code_name(familiars, every, mode)
    trait = pair_item(level(1, 4, mode), code_name(traits, every, mode), mode)
    protocol_1 = st.tuples(name, trait, trait).map(" ".join)
    protocol_2 = st.tuples(level(0, 20, mode), name, trait, trait).map(
        lambda parts: f"{parts[0]};;{parts[1]} {parts[2]} {parts[3]}"
    )
    if mode == "valid":
        return st.one_of(protocol_1, protocol_2)
    return st.one_of(protocol_1, protocol_2, join_items(trait, " ", mode))


def element_text(mode: str):
    name = with_mode(mode, st.sampled_from(ELEMENT_NAMES))
    element = st.tuples(name, level(0, 999, mode)).map(":".join)
    return join_items(element, ";;" if mode == "valid" else [";;", " ;; "], mode)


@cache
def run_data_strategy(name: str, mode: str) -> st.SearchStrategy[dict[str, Any]]:
    mappings = mappings_of(name)
    every = sorted(mappings.known_code_names)
    boons = sorted(mappings.boons)
    extras = sorted(set(mappings.keepsakes) | set(mappings.hexes) | set(boons))

    def pairs(first, names: list[str]):
        item = pair_item(first, code_name(names, every, mode), mode)
        return join_items(item, " ", mode)

    texts = {
        "boonData": pairs(rarity(BOON_RARITIES, mode), boons),
        "weaponData": pairs(rarity(WEAPON_RARITIES, mode), sorted(mappings.weapons)),
        "familiarData": familiar_text(mappings, every, mode),
        "extraData": pairs(rarity(KEEPSAKE_RARITIES, mode), extras),
        "elementalData": element_text(mode),
        "pinData": join_items(
            code_name(boons, every, mode),
            ";;" if mode == "valid" else [";;", " ;; ", ";;;;"],
            mode,
        ),
        "vowData": pairs(level(0, 3, mode), sorted(mappings.vows)),
        "arcanaData": pairs(level(1, 4, mode), sorted(mappings.arcana)),
    }
    sections = {
        key: section(text, EMPTY_MARKERS[key], mode) for key, text in texts.items()
    }
    if mode == "valid":
        return st.fixed_dictionaries(sections)
    extra_keys = st.dictionaries(
        st.sampled_from(["futureField", "__proto__", "constructor", MARKER]),
        st.one_of(st.none(), st.integers(), hostile(), st.lists(hostile(), max_size=2)),
        max_size=2,
    )
    return st.tuples(st.fixed_dictionaries({}, optional=sections), extra_keys).map(
        lambda parts: {**parts[1], **parts[0]}
    )


runs = st.tuples(st.sampled_from(MAPPING_FILES), st.sampled_from(MODES)).flatmap(
    lambda choice: st.tuples(st.just(choice[0]), run_data_strategy(*choice))
)


# --- checks ----------------------------------------------------------------------


def find_bad_values(value: Any, path: str = "run") -> list[str]:
    """Return paths of None, NaN and infinite values anywhere in the output."""
    if value is None:
        return [path]
    if isinstance(value, float) and not math.isfinite(value):
        return [path]
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += find_bad_values(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += find_bad_values(item, f"{path}[{index}]")
    return found


def find_foreign_strings(value: Any, allowed: frozenset[str]) -> list[str]:
    """Return output strings, keys included, that neither the mappings nor a
    validated number account for."""
    if isinstance(value, str):
        if value in allowed or NUMBER_PATTERN.fullmatch(value):
            return []
        return [value]
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += find_foreign_strings(key, allowed)
            found += find_foreign_strings(item, allowed)
    elif isinstance(value, list):
        for item in value:
            found += find_foreign_strings(item, allowed)
    return found


def expected_total(run: dict[str, Any]) -> str:
    total = run["boonData"].get("totalBoons", 0)
    total += 1 if run["weaponData"] else 0
    total += 1 if run["familiarData"] else 0
    return str(total + len(run["extraData"]))


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None)
@given(case=runs)
def test_generated_run_output_safe(case):
    name, run_data = case

    run = transform_run_data(run_data, mappings_of(name)).run
    text = json.dumps(run, ensure_ascii=False, allow_nan=False)

    assert find_bad_values(run) == []
    assert find_foreign_strings(run, allowed_strings(name)) == []
    assert MARKER not in text
    assert "<img" not in text
    assert run["totalRunItems"] == expected_total(run)
    assert set(run) == {*EMPTY_MARKERS, "totalRunItems"}


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None)
@given(case=runs)
def test_generated_run_problems_bounded(case):
    name, run_data = case

    problems = transform_run_data(run_data, mappings_of(name)).problems

    assert all(len(problem.value) <= 64 for problem in problems)
    assert all(problem.section in EMPTY_MARKERS for problem in problems)


@settings(max_examples=100, derandomize=True, database=None, deadline=None)
@given(
    run_data=st.dictionaries(
        st.sampled_from([*EMPTY_MARKERS, "other"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=40),
            st.lists(st.text(max_size=5), max_size=3),
            st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
        ),
    )
)
def test_any_section_values_tolerated(run_data):
    run = transform_run_data(run_data, mappings_of(MAPPING_FILES[0])).run

    assert find_bad_values(run) == []
    assert run["totalRunItems"] == expected_total(run)


def test_same_input_same_output():
    # The mapping records serve every request, so a transformation must not
    # change them, and the same input twice gives the same output.
    generator = random.Random(7)
    mappings = mappings_of(MAPPING_FILES[0])
    weapons = sorted(mappings.weapons)
    for _ in range(50):
        weapon = generator.choice(weapons)
        first = {"weaponData": f"Perfect;;{weapon}"}
        second = {"weaponData": f"Common;;{weapon}"}

        before = transform_run_data(second, mappings).run
        transform_run_data(first, mappings)
        after = transform_run_data(second, mappings).run

        assert before == after


# --- framing ----------------------------------------------------------------------


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53), max_value=2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.text(max_size=10), children, max_size=6),
    ),
    max_leaves=40,
)


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None)
@given(
    value=json_values,
    repeat=st.integers(min_value=1, max_value=200),
    max_bytes=st.one_of(
        st.integers(min_value=PART_MAX_BYTES_MINIMUM, max_value=300),
        st.integers(min_value=PART_MAX_BYTES_MINIMUM, max_value=PART_MAX_BYTES_LIMIT),
    ),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_frame_join_round_trip(value, repeat, max_bytes, seed):
    text = json.dumps([value] * repeat, separators=(",", ":"), ensure_ascii=False)
    parts = frame_message(text, max_bytes)
    shuffled = list(parts)
    random.Random(seed).shuffle(shuffled)

    assert join_parts(parts) == text
    assert join_parts(shuffled) == text
    assert json.loads(join_parts(shuffled)) == [value] * repeat
    assert max(len(part.encode()) for part in parts) <= max_bytes


@settings(max_examples=100, derandomize=True, database=None, deadline=None)
@given(
    text=st.text(
        alphabet=st.sampled_from(["*", "0", "7", "é", "€", "😀", "\u0301", "\n"]),
        max_size=3000,
    ),
    max_bytes=st.integers(min_value=PART_MAX_BYTES_MINIMUM, max_value=400),
)
def test_frame_header_like_data(text, max_bytes):
    parts = frame_message(text, max_bytes)

    assert join_parts(parts) == text
    assert max(len(part.encode()) for part in parts) <= max_bytes
