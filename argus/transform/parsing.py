"""Split run-data sections into items and fields, and validate levels and rarities.

Items in a section are separated by whitespace and fields inside an item by `;;`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from argus.transform.problems import INVALID_LEVEL
from argus.transform.problems import MALFORMED_ITEM
from argus.transform.problems import UNKNOWN_RARITY
from argus.transform.problems import ProblemList

FIELD_SEPARATOR = ";;"

# The game marks spent or finished traits with these suffixes. The mapping file
# lists each code name once, without a suffix.
CODE_NAME_SUFFIXES = ("_Expired", "_Inactive", "_Complete")

# A level (or element count) is a decimal integer of at most three ASCII digits.
# The explicit range keeps out other Unicode digits, which `str.isdigit` accepts.
_LEVEL_PATTERN = re.compile(r"[0-9]{1,3}")


def read_section(
    run_data: Mapping[str, object], key: str, empty_marker: str
) -> str | None:
    """Return the stripped section text, or None when it means "nothing".

    A missing key, None, a non-string value, an empty or whitespace-only string and
    the section's empty marker all mean "nothing".
    """
    value = run_data.get(key)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or text == empty_marker:
        return None
    return text


def split_items(text: str) -> list[str]:
    """Split a section into items, tolerating repeated whitespace."""
    return text.split()


def split_pair(
    item: str, section: str, problems: ProblemList
) -> tuple[str, str] | None:
    """Return the first two `;;` fields of an item, or None for a malformed item.

    Fields after the second are ignored.
    """
    fields = item.split(FIELD_SEPARATOR, 2)
    if len(fields) < 2:
        problems.report(MALFORMED_ITEM, section, item)
        return None
    return fields[0], fields[1]


def remove_suffix(code_name: str) -> str:
    """Remove one state suffix such as `_Expired` from a code name."""
    for suffix in CODE_NAME_SUFFIXES:
        if code_name.endswith(suffix):
            return code_name[: -len(suffix)]
    return code_name


def parse_level(text: str, section: str, problems: ProblemList) -> int | None:
    """Return the level as an integer, or None (reported) if it is invalid."""
    if _LEVEL_PATTERN.fullmatch(text) is None:
        problems.report(INVALID_LEVEL, section, text)
        return None
    return int(text)


def normalise_rarity(
    rarity: str, known_rarities: frozenset[str], section: str, problems: ProblemList
) -> str:
    """Return the rarity if it is known for this item type, else Common (reported)."""
    if rarity in known_rarities:
        return rarity
    problems.report(UNKNOWN_RARITY, section, rarity)
    return "Common"
