"""Build the vowData section from `Level;;CodeName` items."""

from __future__ import annotations

from typing import Any

from argus.mappings import Mappings
from argus.transform.parsing import parse_level
from argus.transform.parsing import remove_suffix
from argus.transform.parsing import split_items
from argus.transform.parsing import split_pair
from argus.transform.problems import INVALID_LEVEL
from argus.transform.problems import UNKNOWN_CODE_NAME
from argus.transform.problems import ProblemList

VOW_SECTION = "vowData"


def build_vow_section(
    text: str | None, mappings: Mappings, problems: ProblemList
) -> dict[str, Any]:
    """Build vowData with the sum of the vows' fear as `totalFear`.

    Valid levels index the vow's `descriptions` and `fears`, so a vow sent with a
    level outside them is skipped.
    """
    if text is None:
        return {}
    vows = []
    total_fear: int | float = 0
    for item in split_items(text):
        pair = split_pair(item, VOW_SECTION, problems)
        if pair is None:
            continue
        code_name = remove_suffix(pair[1])
        vow = mappings.vows.get(code_name)
        if vow is None:
            problems.report(UNKNOWN_CODE_NAME, VOW_SECTION, code_name)
            continue
        level = parse_level(pair[0], VOW_SECTION, problems)
        if level is None:
            continue
        if level >= len(vow.descriptions):
            problems.report(INVALID_LEVEL, VOW_SECTION, pair[0])
            continue
        vows.append(
            {
                "codeName": vow.code_name,
                "name": vow.name,
                "level": str(level),
                "description": vow.descriptions[level],
            }
        )
        total_fear += vow.fears[level]
    return {"vowList": vows, "totalFear": total_fear}
