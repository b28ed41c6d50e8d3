"""Build the familiarData section.

Protocol 1 sends `Name L1;;Trait1 L2;;Trait2` and protocol 2 puts the familiar's
level first: `Level;;Name L1;;Trait1 L2;;Trait2`. The run data carries no protocol
version, so a `;;` in the first item selects the protocol-2 form.
"""

from __future__ import annotations

from typing import Any

from argus.mappings import Familiar
from argus.mappings import Mappings
from argus.transform.parsing import FIELD_SEPARATOR
from argus.transform.parsing import parse_level
from argus.transform.parsing import remove_suffix
from argus.transform.parsing import split_items
from argus.transform.parsing import split_pair
from argus.transform.problems import MALFORMED_ITEM
from argus.transform.problems import UNKNOWN_CODE_NAME
from argus.transform.problems import ProblemList

FAMILIAR_SECTION = "familiarData"

# The familiar item, then one `Level;;Trait` item for each of its two traits.
FAMILIAR_ITEM_COUNT = 3


def build_familiar_section(
    text: str | None, mappings: Mappings, problems: ProblemList
) -> dict[str, Any]:
    """Build familiarData, or `{}` for an unknown familiar or an invalid item.

    `rarity` is the familiar's level without leading zeros (protocol 2) or Common
    (protocol 1). Each effect takes its value from the level sent for its trait.
    """
    if text is None:
        return {}
    items = split_items(text)
    if len(items) != FAMILIAR_ITEM_COUNT:
        problems.report(MALFORMED_ITEM, FAMILIAR_SECTION, text)
        return {}
    head = _parse_head(items[0], problems)
    if head is None:
        return {}
    rarity, code_name = head
    familiar = mappings.familiars.get(code_name)
    if familiar is None:
        problems.report(UNKNOWN_CODE_NAME, FAMILIAR_SECTION, code_name)
        return {}
    trait_levels = _parse_trait_levels(items[1:], problems)
    return {
        "codeName": familiar.code_name,
        "rarity": rarity,
        "name": familiar.name,
        "description": familiar.description,
        "effects": _build_trait_effects(familiar, trait_levels),
    }


def _parse_head(item: str, problems: ProblemList) -> tuple[str, str] | None:
    """Return (rarity, code name) of the familiar item, or None if invalid."""
    if FIELD_SEPARATOR not in item:
        return "Common", remove_suffix(item)
    level_text, code_name = item.split(FIELD_SEPARATOR, 2)[:2]
    level = parse_level(level_text, FAMILIAR_SECTION, problems)
    if level is None:
        return None
    return str(level), remove_suffix(code_name)


def _parse_trait_levels(items: list[str], problems: ProblemList) -> dict[str, str]:
    """Map each trait code name to its level as a column key ("1".."4")."""
    levels: dict[str, str] = {}
    for item in items:
        pair = split_pair(item, FAMILIAR_SECTION, problems)
        if pair is None:
            continue
        level = parse_level(pair[0], FAMILIAR_SECTION, problems)
        if level is None:
            continue
        # The first item for a trait wins if the client repeats one.
        levels.setdefault(remove_suffix(pair[1]), str(level))
    return levels


def _build_trait_effects(
    familiar: Familiar, trait_levels: dict[str, str]
) -> list[dict[str, str]]:
    rows = []
    for familiar_effect in familiar.effects:
        effect = familiar_effect.effect
        level = trait_levels.get(familiar_effect.trait_code_name)
        value = None if level is None else effect.value_for(level)
        if value is None:
            rows.append({"text": effect.text})
        else:
            rows.append({"text": effect.text, "value": value})
    return rows
