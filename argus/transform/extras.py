"""Build the extraData section from keepsakes, hexes and other gods' boons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from argus.mappings import Boon
from argus.mappings import Hex
from argus.mappings import Keepsake
from argus.mappings import Mappings
from argus.transform.effects import build_effect_values
from argus.transform.parsing import normalise_rarity
from argus.transform.parsing import remove_suffix
from argus.transform.parsing import split_items
from argus.transform.parsing import split_pair
from argus.transform.problems import UNKNOWN_CODE_NAME
from argus.transform.problems import ProblemList
from argus.transform.rarities import BOON_RARITIES
from argus.transform.rarities import KEEPSAKE_RARITIES

EXTRA_SECTION = "extraData"


@dataclass(frozen=True, slots=True)
class ExtraRule:
    """Display rule for the boons of one god that the extension shows as extras."""

    extra_type: str
    keeps_rarity: bool
    shows_effects: bool


# Keyed by the first entry of the boon's `gods`. Boons of gods not listed here are
# not extras and are skipped. Chaos blessings and curses share one extra type.
EXTRA_RULES_BY_GOD = {
    "Chaos": ExtraRule("Chaos Curse", keeps_rarity=False, shows_effects=False),
    "Icarus": ExtraRule("Icarus", keeps_rarity=False, shows_effects=False),
    "Medea": ExtraRule("Medea", keeps_rarity=False, shows_effects=False),
    "Circe": ExtraRule("Circe", keeps_rarity=False, shows_effects=False),
    "Hades": ExtraRule("Hades", keeps_rarity=True, shows_effects=True),
    "Athena": ExtraRule("Athena", keeps_rarity=True, shows_effects=True),
}


def build_extra_section(
    text: str | None, mappings: Mappings, problems: ProblemList
) -> list[dict[str, Any]]:
    """Build extraData with the keepsake, then the hex, then other extras in order.

    If several keepsakes or hexes are sent, the last of each kind is shown.
    """
    if text is None:
        return []
    keepsake = None
    hex_extra = None
    others = []
    for item in split_items(text):
        pair = split_pair(item, EXTRA_SECTION, problems)
        if pair is None:
            continue
        rarity_text, code_name = pair[0], remove_suffix(pair[1])
        if code_name in mappings.keepsakes:
            record = mappings.keepsakes[code_name]
            keepsake = _build_keepsake(record, rarity_text, problems)
        elif code_name in mappings.hexes:
            hex_extra = _build_hex(mappings.hexes[code_name])
        elif code_name in mappings.boons:
            extra = _build_god_extra(mappings.boons[code_name], rarity_text, problems)
            if extra is not None:
                others.append(extra)
        else:
            problems.report(UNKNOWN_CODE_NAME, EXTRA_SECTION, code_name)
    leading = [extra for extra in (keepsake, hex_extra) if extra is not None]
    return leading + others


def _build_keepsake(
    keepsake: Keepsake, rarity_text: str, problems: ProblemList
) -> dict[str, Any]:
    # Normalise first, because keepsake texts exist only for keepsake rarities.
    rarity = normalise_rarity(rarity_text, KEEPSAKE_RARITIES, EXTRA_SECTION, problems)
    return {
        "extraType": "Keepsake",
        "codeName": keepsake.code_name,
        "name": keepsake.name,
        "description": keepsake.descriptions[rarity],
        "rarity": rarity,
    }


def _build_hex(hex_record: Hex) -> dict[str, Any]:
    return {
        "extraType": "Hex",
        "codeName": hex_record.code_name,
        "name": hex_record.name,
        "description": hex_record.description,
        "rarity": "Common",
    }


def _build_god_extra(
    boon: Boon, rarity_text: str, problems: ProblemList
) -> dict[str, Any] | None:
    """Build the extra for a boon of a god in `EXTRA_RULES_BY_GOD`, else None."""
    rule = EXTRA_RULES_BY_GOD.get(boon.gods[0]) if boon.gods else None
    if rule is None:
        return None
    rarity = "Common"
    if rule.keeps_rarity:
        rarity = normalise_rarity(rarity_text, BOON_RARITIES, EXTRA_SECTION, problems)
    extra: dict[str, Any] = {
        "extraType": rule.extra_type,
        "codeName": boon.code_name,
        "name": boon.name,
        "description": boon.description_for(rarity),
        "rarity": rarity,
    }
    if rule.shows_effects and boon.effects is not None:
        extra["effects"] = build_effect_values(boon.effects, rarity.lower())
    return extra
