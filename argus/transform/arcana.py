"""Build the arcanaData section from `Level;;CodeName` items."""

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
from argus.transform.rarities import ARCANA_RARITY_BY_LEVEL

ARCANA_SECTION = "arcanaData"


def build_arcana_section(
    text: str | None, mappings: Mappings, problems: ProblemList
) -> dict[str, Any]:
    """Build arcanaData with the sum of the cards' grasp as `totalGrasp`.

    Card levels 1 to 4 select the rarity and description, and other levels skip the
    card.
    """
    if text is None:
        return {}
    cards = []
    total_grasp: int | float = 0
    for item in split_items(text):
        pair = split_pair(item, ARCANA_SECTION, problems)
        if pair is None:
            continue
        code_name = remove_suffix(pair[1])
        card = mappings.arcana.get(code_name)
        if card is None:
            problems.report(UNKNOWN_CODE_NAME, ARCANA_SECTION, code_name)
            continue
        level = parse_level(pair[0], ARCANA_SECTION, problems)
        if level is None:
            continue
        if level not in ARCANA_RARITY_BY_LEVEL:
            problems.report(INVALID_LEVEL, ARCANA_SECTION, pair[0])
            continue
        cards.append(
            {
                "codeName": card.code_name,
                "name": card.name,
                "rarity": ARCANA_RARITY_BY_LEVEL[level],
                "description": card.descriptions[level],
            }
        )
        total_grasp += card.grasp
    return {"arcanaList": cards, "totalGrasp": total_grasp}
