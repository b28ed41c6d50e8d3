"""Build the boonData and pinData sections."""

from __future__ import annotations

from typing import Any

from argus.mappings import Boon
from argus.mappings import Mappings
from argus.transform.effects import build_effect_values
from argus.transform.effects import copy_effects
from argus.transform.parsing import FIELD_SEPARATOR
from argus.transform.parsing import normalise_rarity
from argus.transform.parsing import remove_suffix
from argus.transform.parsing import split_items
from argus.transform.parsing import split_pair
from argus.transform.problems import UNKNOWN_CODE_NAME
from argus.transform.problems import ProblemList
from argus.transform.rarities import BOON_RARITIES

BOON_SECTION = "boonData"
PIN_SECTION = "pinData"
MAX_PINS = 3


def build_boon_object(boon: Boon, rarity: str) -> dict[str, Any]:
    """Build the display object of a boon at a known rarity."""
    result: dict[str, Any] = {
        "codeName": boon.code_name,
        "rarity": rarity,
        "name": boon.name,
        "description": boon.description_for(rarity),
        "boonType": boon.boon_type,
    }
    if boon.effects is not None:
        result["effects"] = build_effect_values(boon.effects, rarity.lower())
    return result


def build_boon_section(
    text: str | None, mappings: Mappings, problems: ProblemList
) -> tuple[dict[str, Any], frozenset[str]]:
    """Build boonData and return it with the code names of the boons recognised.

    A boon with a slot takes that slot's key, so a later boon for the same slot
    displaces an earlier one. Every recognised boon counts in `totalBoons`.
    """
    if text is None:
        return {}, frozenset()
    other_boons: list[dict[str, Any]] = []
    section: dict[str, Any] = {"otherBoons": other_boons, "totalBoons": 0}
    recognised = set()
    for item in split_items(text):
        pair = split_pair(item, BOON_SECTION, problems)
        if pair is None:
            continue
        rarity_text, code_name = pair[0], remove_suffix(pair[1])
        boon = mappings.boons.get(code_name)
        if boon is None:
            problems.report(UNKNOWN_CODE_NAME, BOON_SECTION, code_name)
            continue
        rarity = normalise_rarity(rarity_text, BOON_RARITIES, BOON_SECTION, problems)
        boon_object = build_boon_object(boon, rarity)
        if boon.slot_key is None:
            other_boons.append(boon_object)
        else:
            section[boon.slot_key] = boon_object
        section["totalBoons"] += 1
        recognised.add(code_name)
    return section, frozenset(recognised)


def build_pin_section(
    text: str | None,
    mappings: Mappings,
    sent_boons: frozenset[str],
    problems: ProblemList,
) -> list[dict[str, Any]]:
    """Build pinData from the first `MAX_PINS` boons among the pinned code names.

    Pinned code names of other kinds (a weapon, say) are skipped without a problem.
    """
    if text is None:
        return []
    pins = []
    for field in text.split(FIELD_SEPARATOR):
        code_name = remove_suffix(field.strip())
        if not code_name:
            continue
        boon = mappings.boons.get(code_name)
        if boon is None:
            if code_name not in mappings.known_code_names:
                problems.report(UNKNOWN_CODE_NAME, PIN_SECTION, code_name)
            continue
        pins.append(_build_pin(boon, mappings, sent_boons))
        if len(pins) == MAX_PINS:
            break
    return pins


def _build_pin(
    boon: Boon, mappings: Mappings, sent_boons: frozenset[str]
) -> dict[str, Any]:
    pin: dict[str, Any] = {
        "codeName": boon.code_name,
        "rarity": boon.pin_rarity,
        "name": boon.name,
        "description": boon.description_for("Common"),
    }
    if boon.effects is not None:
        pin["effects"] = copy_effects(boon.effects)
    if boon.requirements is not None:
        pin["requirements"] = _build_requirements(boon, mappings, sent_boons)
    return pin


def _build_requirements(
    boon: Boon, mappings: Mappings, sent_boons: frozenset[str]
) -> list[dict[str, Any]]:
    """Build requirement rows whose items are Common boons marked `fulfilled`.

    `fulfilled` is true when the boon was among those sent in boonData.
    """
    rows = []
    for requirement in boon.requirements or ():
        items = []
        for code_name in requirement.boon_code_names:
            item = build_boon_object(mappings.boons[code_name], "Common")
            item["fulfilled"] = code_name in sent_boons
            items.append(item)
        rows.append({"type": requirement.type, "items": items})
    return rows
