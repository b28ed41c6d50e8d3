"""Build the weaponData section."""

from __future__ import annotations

from typing import Any

from argus.mappings import Mappings
from argus.mappings import thaw
from argus.transform.effects import copy_effects_with_value
from argus.transform.parsing import normalise_rarity
from argus.transform.parsing import remove_suffix
from argus.transform.parsing import split_items
from argus.transform.parsing import split_pair
from argus.transform.problems import UNKNOWN_CODE_NAME
from argus.transform.problems import ProblemList
from argus.transform.rarities import WEAPON_RARITIES

WEAPON_SECTION = "weaponData"


def build_weapon_section(
    text: str | None, mappings: Mappings, problems: ProblemList
) -> dict[str, Any]:
    """Build weaponData from the weapon's mapping entry, code name and rarity.

    The section carries one `Rarity;;CodeName` item, and items after the first are
    ignored. Each effect gains `value` from the column of the weapon's rarity.
    """
    if text is None:
        return {}
    pair = split_pair(split_items(text)[0], WEAPON_SECTION, problems)
    if pair is None:
        return {}
    rarity_text, code_name = pair[0], remove_suffix(pair[1])
    weapon = mappings.weapons.get(code_name)
    if weapon is None:
        problems.report(UNKNOWN_CODE_NAME, WEAPON_SECTION, code_name)
        return {}
    rarity = normalise_rarity(rarity_text, WEAPON_RARITIES, WEAPON_SECTION, problems)
    # Fresh copies, because the mapping records serve every request.
    section = thaw(weapon.fields)
    if weapon.effects is not None:
        section["effects"] = copy_effects_with_value(weapon.effects, rarity.lower())
    section["codeName"] = weapon.code_name
    section["rarity"] = rarity
    return section
