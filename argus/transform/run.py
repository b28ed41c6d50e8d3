"""Transform one run state from the game into the object the extension renders."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from argus.mappings import Mappings
from argus.transform.arcana import build_arcana_section
from argus.transform.boons import build_boon_section
from argus.transform.boons import build_pin_section
from argus.transform.elements import build_element_section
from argus.transform.extras import build_extra_section
from argus.transform.familiar import build_familiar_section
from argus.transform.parsing import read_section
from argus.transform.problems import Problem
from argus.transform.problems import ProblemList
from argus.transform.vows import build_vow_section
from argus.transform.weapon import build_weapon_section

# Each runData section and the marker the client sends when it is empty.
EMPTY_MARKERS = {
    "boonData": "NOBOONS",
    "weaponData": "NOWEAPONS",
    "familiarData": "NOFAMILIARS",
    "extraData": "NOEXTRAS",
    "elementalData": "NOELEMENTS",
    "pinData": "NOPINS",
    "vowData": "NOVOWS",
    "arcanaData": "NOARCANA",
}


@dataclass(frozen=True, slots=True)
class TransformResult:
    """The transformed run and the problems found in its input."""

    run: dict[str, Any]
    problems: tuple[Problem, ...]


def transform_run_data(
    run_data: Mapping[str, object], mappings: Mappings
) -> TransformResult:
    """Transform the `runData` sections into the run object the extension renders.

    The function is pure: it reads `mappings` without changing them, logs nothing,
    and returns fresh dicts and lists. Output strings come from the mappings, from
    the known rarities, or from numbers parsed out of the input, never from raw input
    text. Keys other than the eight sections are ignored.
    """
    problems = ProblemList()
    texts = {}
    for key, marker in EMPTY_MARKERS.items():
        texts[key] = read_section(run_data, key, marker)
    boon_data, sent_boons = build_boon_section(texts["boonData"], mappings, problems)
    run: dict[str, Any] = {
        "boonData": boon_data,
        "weaponData": build_weapon_section(texts["weaponData"], mappings, problems),
        "familiarData": build_familiar_section(
            texts["familiarData"], mappings, problems
        ),
        "extraData": build_extra_section(texts["extraData"], mappings, problems),
        "elementalData": build_element_section(texts["elementalData"], problems),
        "pinData": build_pin_section(texts["pinData"], mappings, sent_boons, problems),
        "vowData": build_vow_section(texts["vowData"], mappings, problems),
        "arcanaData": build_arcana_section(texts["arcanaData"], mappings, problems),
    }
    run["totalRunItems"] = str(count_run_items(run))
    return TransformResult(run=run, problems=problems.to_tuple())


def count_run_items(run: Mapping[str, Any]) -> int:
    """Count boons, the weapon, the familiar and the extras of a transformed run."""
    total = run["boonData"].get("totalBoons", 0)
    if run["weaponData"]:
        total += 1
    if run["familiarData"]:
        total += 1
    return total + len(run["extraData"])
