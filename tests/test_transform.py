"""Tests for the run-data transformation, from shared fixtures and focused cases."""

from __future__ import annotations

import json
import math
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from argus.mappings import Mappings
from argus.mappings import parse_mappings
from argus.transform import Problem
from argus.transform import TransformResult
from argus.transform import transform_run_data
from argus.transform.elements import ELEMENT_NAMES
from argus.transform.extras import EXTRA_RULES_BY_GOD
from argus.transform.parsing import parse_level
from argus.transform.parsing import remove_suffix
from argus.transform.problems import ProblemList
from argus.transform.rarities import BOON_RARITIES
from argus.transform.rarities import KEEPSAKE_RARITIES
from argus.transform.rarities import WEAPON_RARITIES
from argus.transform.run import EMPTY_MARKERS

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("ARGUS_SHARED_DIR") or REPO_ROOT.parent / "shared")
DATA_DIR = SHARED_DIR / "data"
CASES_FILE = SHARED_DIR / "fixtures" / "run_data_cases.json"
SAMPLE_MAPPINGS_FILE = REPO_ROOT / "ui_mappings.json"
SAMPLE_RUN_FILE = REPO_ROOT / "docs" / "sample_run.json"

CASES = json.loads(CASES_FILE.read_bytes())


@cache
def mappings_from(file_name: str) -> Mappings:
    return parse_mappings((DATA_DIR / file_name).read_bytes())


def current() -> Mappings:
    return mappings_from("ui_mappings.json")


def previous() -> Mappings:
    return mappings_from("ui_mappings_2025-10.json")


def load_document(file_name: str = "ui_mappings.json") -> dict[str, Any]:
    """Return a fresh parsed mapping file, safe to modify in a test."""
    return json.loads((DATA_DIR / file_name).read_bytes())


def transform(mappings: Mappings | None = None, **sections: object) -> TransformResult:
    """Transform run data made of the given sections, the others left out."""
    return transform_run_data(sections, mappings or current())


def as_json(run: dict[str, Any]) -> Any:
    """Serialise as the broadcaster does, so NaN or Infinity raise ValueError."""
    return json.loads(json.dumps(run, allow_nan=False))


def find_nulls(value: Any, path: str = "run") -> list[str]:
    """Return the paths of None, NaN and Infinity values in a nested structure."""
    if value is None:
        return [path]
    if isinstance(value, float) and not math.isfinite(value):
        return [path]
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += find_nulls(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += find_nulls(item, f"{path}[{index}]")
    return found


def problem_kinds(result: TransformResult) -> list[str]:
    return [problem.kind for problem in result.problems]


# Shared fixture cases


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_fixture_case(case: dict[str, Any]) -> None:
    result = transform_run_data(case["runData"], mappings_from(case["mappings"]))
    assert as_json(result.run) == case["expected"]
    assert find_nulls(result.run) == []


def test_fixture_count() -> None:
    assert len(CASES) >= 42


# Section reading


def test_all_sections_present() -> None:
    run = transform().run
    assert set(run) == set(EMPTY_MARKERS) | {"totalRunItems"}


@pytest.mark.parametrize("value", [None, "", "   ", "\t\n", 7, ["NOBOONS"], {"a": 1}])
def test_section_empty_values(value: object) -> None:
    result = transform(boonData=value, vowData=value, elementalData=value)
    assert result.run["boonData"] == {}
    assert result.run["vowData"] == {}
    assert result.run["elementalData"] == []
    assert result.problems == ()


def test_section_marker_with_spaces() -> None:
    assert transform(boonData="  NOBOONS ").run["boonData"] == {}


def test_unknown_run_data_keys_ignored() -> None:
    result = transform(boonData="Common;;ZeusWeaponBoon", futureData="<b>x</b>")
    assert "futureData" not in result.run
    assert result.run["boonData"]["totalBoons"] == 1


def test_repeated_whitespace_between_items() -> None:
    result = transform(boonData="\tCommon;;ZeusWeaponBoon  \n Rare;;HeraCastBoon ")
    assert result.run["boonData"]["totalBoons"] == 2
    assert result.problems == ()


# Parsing helpers


@pytest.mark.parametrize(
    ("text", "level"),
    [("0", 0), ("4", 4), ("007", 7), ("999", 999)],
)
def test_parse_level_valid(text: str, level: int) -> None:
    problems = ProblemList()
    assert parse_level(text, "vowData", problems) == level
    assert problems.to_tuple() == ()


@pytest.mark.parametrize(
    "text",
    ["", "1000", "0001", "-1", "+1", "1.0", "2.5", " 1", "1 ", "1\n", "x", "\u0663"],
)
def test_parse_level_invalid(text: str) -> None:
    problems = ProblemList()
    assert parse_level(text, "vowData", problems) is None
    assert problems.to_tuple() == (Problem("invalid_level", "vowData", text),)


@pytest.mark.parametrize(
    ("code_name", "expected"),
    [
        ("ZeusWeaponBoon_Expired", "ZeusWeaponBoon"),
        ("ZeusWeaponBoon_Inactive", "ZeusWeaponBoon"),
        ("ZeusWeaponBoon_Complete", "ZeusWeaponBoon"),
        ("ZeusWeaponBoon", "ZeusWeaponBoon"),
        ("Zeus_ExpiredWeaponBoon", "Zeus_ExpiredWeaponBoon"),
        ("ZeusWeaponBoon_Expired_Complete", "ZeusWeaponBoon_Expired"),
        ("_Expired", ""),
    ],
)
def test_remove_suffix(code_name: str, expected: str) -> None:
    assert remove_suffix(code_name) == expected


def test_problem_value_truncated() -> None:
    problem = Problem("malformed_item", "boonData", "x" * 200)
    assert problem.value == "x" * 64


def test_problem_value_truncated_in_result() -> None:
    result = transform(boonData="Common;;" + "A" * 300)
    assert len(result.problems) == 1
    assert result.problems[0].value == "A" * 64


# Boons


@pytest.mark.parametrize("suffix", ["_Expired", "_Inactive", "_Complete"])
def test_boon_suffix_removed(suffix: str) -> None:
    boon_data = transform(boonData=f"Common;;ZeusWeaponBoon{suffix}").run["boonData"]
    assert boon_data["weaponBoon"]["codeName"] == "ZeusWeaponBoon"
    assert boon_data["totalBoons"] == 1


def test_boon_object_fields() -> None:
    boon = transform(boonData="Epic;;ZeusWeaponBoon").run["boonData"]["weaponBoon"]
    assert boon["codeName"] == "ZeusWeaponBoon"
    assert boon["rarity"] == "Epic"
    assert boon["name"] == "Heaven Strike"
    assert boon["boonType"] == "Boon"
    assert boon["effects"] == [{"text": "Blitz Damage:", "value": "160"}]


def test_boon_effect_without_column() -> None:
    boon = transform(boonData="Common;;RandomStatusBoon").run["boonData"]
    assert boon["otherBoons"][0]["effects"] == [{"text": "Bonus Random Curses:"}]


def test_boon_without_effects_key() -> None:
    boon_data = transform(boonData="Common;;DaggerBlinkAoETrait").run["boonData"]
    assert "effects" not in boon_data["otherBoons"][0]


def test_hammer_legendary_text() -> None:
    hammer = transform(boonData="Legendary;;StaffDoubleAttackTrait").run["boonData"]
    boon = hammer["otherBoons"][0]
    assert boon["boonType"] == "Hammer"
    assert boon["description"] == "Your <b>Attacks</b> have <b>+50</b> Power."


@pytest.mark.parametrize("rarity", ["Common", "Rare", "Heroic", "Duo"])
def test_hammer_falls_back_to_common(rarity: str) -> None:
    boon_data = transform(boonData=f"{rarity};;StaffDoubleAttackTrait").run["boonData"]
    boon = boon_data["otherBoons"][0]
    assert boon["description"] == "Your <b>Attacks</b> have <b>+30</b> Power."


def test_hammer_in_previous_mappings() -> None:
    result = transform(previous(), boonData="Legendary;;StaffDoubleAttackTrait")
    boon = result.run["boonData"]["otherBoons"][0]
    assert boon["boonType"] == "Hammer"
    assert boon["description"] == "Your <b>Attacks</b> have <b>+30</b> Power."


def test_boon_type_empty_gods() -> None:
    document = load_document()
    document["boons"]["ZeusWeaponBoon"]["gods"] = []
    result = transform(parse_mappings(document), boonData="Common;;ZeusWeaponBoon")
    assert result.run["boonData"]["weaponBoon"]["boonType"] == "Hammer"


def test_slot_last_boon_wins() -> None:
    boon_data = transform(boonData="Common;;ZeusWeaponBoon Rare;;ApolloWeaponBoon").run[
        "boonData"
    ]
    assert boon_data["weaponBoon"]["codeName"] == "ApolloWeaponBoon"
    assert boon_data["otherBoons"] == []
    assert boon_data["totalBoons"] == 2


def test_every_slot_key() -> None:
    text = (
        "Common;;ZeusWeaponBoon Common;;ZeusSpecialBoon Common;;ZeusCastBoon "
        "Common;;ZeusSprintBoon Common;;ZeusManaBoon"
    )
    boon_data = transform(boonData=text).run["boonData"]
    for key in ("weaponBoon", "specialBoon", "castBoon", "sprintBoon", "manaBoon"):
        assert key in boon_data, key
    assert boon_data["totalBoons"] == 5


def test_duplicate_boons_stay() -> None:
    boon_data = transform(boonData="Rare;;DoubleRewardBoon Epic;;DoubleRewardBoon").run[
        "boonData"
    ]
    assert [boon["rarity"] for boon in boon_data["otherBoons"]] == ["Rare", "Epic"]
    assert boon_data["totalBoons"] == 2


def test_boon_unknown_rarity_common() -> None:
    result = transform(boonData="Mythic;;ZeusWeaponBoon")
    assert result.run["boonData"]["weaponBoon"]["rarity"] == "Common"
    assert result.problems == (Problem("unknown_rarity", "boonData", "Mythic"),)


def test_boon_lowercase_rarity_unknown() -> None:
    result = transform(boonData="epic;;ZeusWeaponBoon")
    assert result.run["boonData"]["weaponBoon"]["rarity"] == "Common"
    assert problem_kinds(result) == ["unknown_rarity"]


def test_boon_unknown_code_name() -> None:
    result = transform(boonData="Common;;NoSuchBoon")
    assert result.run["boonData"] == {"otherBoons": [], "totalBoons": 0}
    assert result.problems == (Problem("unknown_code_name", "boonData", "NoSuchBoon"),)


@pytest.mark.parametrize(
    "code_name",
    ["constructor", "__proto__", "toString", "hasOwnProperty", "__class__", "keys"],
)
def test_object_property_names_unknown(code_name: str) -> None:
    result = transform(boonData=f"Common;;{code_name}", vowData=f"1;;{code_name}")
    assert result.run["boonData"]["totalBoons"] == 0
    assert result.run["vowData"]["vowList"] == []
    assert problem_kinds(result) == ["unknown_code_name", "unknown_code_name"]


def test_malformed_item_skipped() -> None:
    result = transform(boonData="Common Rare;;ZeusWeaponBoon")
    assert result.run["boonData"]["totalBoons"] == 1
    assert result.problems == (Problem("malformed_item", "boonData", "Common"),)


def test_extra_fields_ignored() -> None:
    result = transform(boonData="Rare;;ZeusWeaponBoon;;junk;;more")
    assert result.run["boonData"]["weaponBoon"]["rarity"] == "Rare"
    assert result.problems == ()


# Weapon


def test_weapon_entry_with_value() -> None:
    weapon = transform(weaponData="Perfect;;DaggerBlockAspect").run["weaponData"]
    assert weapon["codeName"] == "DaggerBlockAspect"
    assert weapon["rarity"] == "Perfect"
    assert weapon["name"] == "Aspect of Artemis"
    assert weapon["effects"][0]["value"] == "+90%"
    assert weapon["effects"][0]["common"] == "+20%"


def test_weapon_without_effects() -> None:
    weapon = transform(weaponData="Common;;DummyWeaponStaff").run["weaponData"]
    assert "effects" not in weapon
    assert weapon["name"] == "Witch's Staff"


def test_weapon_unknown_rarity() -> None:
    result = transform(weaponData="Duo;;DaggerBlockAspect")
    weapon = result.run["weaponData"]
    assert weapon["rarity"] == "Common"
    assert weapon["effects"][0]["value"] == "+20%"
    assert result.problems == (Problem("unknown_rarity", "weaponData", "Duo"),)


def test_weapon_unknown_code_name() -> None:
    result = transform(weaponData="Rare;;NoSuchWeapon")
    assert result.run["weaponData"] == {}
    assert problem_kinds(result) == ["unknown_code_name"]


def test_weapon_extra_keys_copied() -> None:
    document = load_document()
    document["weapons"]["DaggerBlockAspect"]["image"] = {"file": "dagger.png"}
    result = transform(parse_mappings(document), weaponData="Rare;;DaggerBlockAspect")
    assert as_json(result.run)["weaponData"]["image"] == {"file": "dagger.png"}


def test_weapon_mapping_not_mutated() -> None:
    mappings = current()
    before = repr(mappings.weapons["DaggerBlockAspect"])
    first = transform(mappings, weaponData="Perfect;;DaggerBlockAspect").run
    first["weaponData"]["effects"][0]["value"] = "changed"
    first["weaponData"]["name"] = "changed"
    second = transform(mappings, weaponData="Rare;;DaggerBlockAspect").run
    assert repr(mappings.weapons["DaggerBlockAspect"]) == before
    assert second["weaponData"]["effects"][0]["value"] == "+30%"
    assert second["weaponData"]["name"] == "Aspect of Artemis"


def test_weapon_without_rarity_column_after_other() -> None:
    document = load_document()
    del document["weapons"]["DaggerBlockAspect"]["effects"][0]["perfect"]
    mappings = parse_mappings(document)
    transform(mappings, weaponData="Rare;;DaggerBlockAspect")
    weapon = transform(mappings, weaponData="Perfect;;DaggerBlockAspect").run[
        "weaponData"
    ]
    assert "value" not in weapon["effects"][0]


def test_mappings_unchanged_by_runs() -> None:
    mappings = parse_mappings((DATA_DIR / "ui_mappings.json").read_bytes())
    before = repr(mappings)
    for case in CASES:
        result = transform_run_data(case["runData"], mappings)
        for section in result.run.values():
            if isinstance(section, dict):
                section.clear()
    assert repr(mappings) == before


def test_outputs_share_no_objects() -> None:
    first = transform(boonData="Common;;ZeusWeaponBoon", pinData="EchoExpirationBoon")
    first.run["boonData"]["weaponBoon"]["effects"][0]["text"] = "changed"
    first.run["pinData"][0]["effects"][0]["text"] = "changed"
    second = transform(boonData="Common;;ZeusWeaponBoon", pinData="EchoExpirationBoon")
    assert second.run["boonData"]["weaponBoon"]["effects"][0]["text"] == "Blitz Damage:"
    assert second.run["pinData"][0]["effects"][0]["text"] != "changed"


# Familiar

FAMILIAR_TRAITS = "2;;LastStandFamiliar 3;;FamiliarCatResourceBonus"
PROTOCOL_2_FAMILIAR = f"8;;LastStandFamiliar {FAMILIAR_TRAITS}"
PROTOCOL_1_FAMILIAR = f"LastStandFamiliar {FAMILIAR_TRAITS}"


def test_familiar_protocol_2() -> None:
    familiar = transform(familiarData=PROTOCOL_2_FAMILIAR).run["familiarData"]
    assert familiar["codeName"] == "LastStandFamiliar"
    assert familiar["rarity"] == "8"
    assert familiar["effects"][1] == {
        "text": "Bonus chance of Fishing Spots appearing:",
        "value": "+40%",
    }


def test_familiar_protocol_1() -> None:
    familiar = transform(familiarData=PROTOCOL_1_FAMILIAR).run["familiarData"]
    assert familiar["rarity"] == "Common"
    assert familiar["effects"][0] == {"text": "Bonus Death Defiance:", "value": "+1"}


def test_familiar_level_leading_zeros() -> None:
    text = "008;;LastStandFamiliar 02;;LastStandFamiliar 3;;FamiliarCatResourceBonus"
    familiar = transform(familiarData=text).run["familiarData"]
    assert familiar["rarity"] == "8"
    assert familiar["effects"][0]["value"] == "+1"


@pytest.mark.parametrize("level", ["x", "-1", "1000", "", "<b>8</b>"])
def test_familiar_invalid_level_dropped(level: str) -> None:
    text = f"{level};;LastStandFamiliar {FAMILIAR_TRAITS}"
    result = transform(familiarData=text)
    assert result.run["familiarData"] == {}
    assert result.problems == (Problem("invalid_level", "familiarData", level),)


@pytest.mark.parametrize(
    "text",
    [
        "8;;LastStandFamiliar 2;;LastStandFamiliar",
        "8;;LastStandFamiliar 2;;LastStandFamiliar 3;;FamiliarCatResourceBonus 1;;X",
        "LastStandFamiliar",
    ],
)
def test_familiar_wrong_part_count(text: str) -> None:
    result = transform(familiarData=text)
    assert result.run["familiarData"] == {}
    assert problem_kinds(result) == ["malformed_item"]


def test_familiar_unknown_code_name() -> None:
    result = transform(familiarData="8;;NoFamiliar 2;;A 3;;B")
    assert result.run["familiarData"] == {}
    expected = Problem("unknown_code_name", "familiarData", "NoFamiliar")
    assert result.problems == (expected,)


def test_familiar_trait_without_column() -> None:
    text = "3;;HealthFamiliar 9;;HealthFamiliar 2;;Nope"
    familiar = transform(familiarData=text).run["familiarData"]
    assert familiar["rarity"] == "3"
    assert familiar["effects"] == [
        {"text": "Bonus Max Health:"},
        {"text": "Bonus chance of Souls appearing:"},
    ]


def test_familiar_trait_invalid_level() -> None:
    text = "3;;HealthFamiliar x;;HealthFamiliar 2;;FamiliarFrogResourceBonus"
    result = transform(familiarData=text)
    effects = result.run["familiarData"]["effects"]
    assert effects[0] == {"text": "Bonus Max Health:"}
    assert effects[1]["value"] == "+30%"
    assert result.problems == (Problem("invalid_level", "familiarData", "x"),)


def test_familiar_trait_malformed() -> None:
    text = "3;;HealthFamiliar 2 2;;FamiliarFrogResourceBonus"
    result = transform(familiarData=text)
    assert result.run["familiarData"]["effects"][0] == {"text": "Bonus Max Health:"}
    assert result.problems == (Problem("malformed_item", "familiarData", "2"),)


# Extras


def test_extras_order() -> None:
    text = (
        "Common;;ChaosNoMoneyCurse Epic;;HadesLifestealBoon Common;;SpellSummonTrait "
        "Rare;;ManaOverTimeRefundKeepsake Common;;HealingOnDeathCurse"
    )
    extras = transform(extraData=text).run["extraData"]
    assert [extra["extraType"] for extra in extras] == [
        "Keepsake",
        "Hex",
        "Chaos Curse",
        "Hades",
        "Medea",
    ]


def test_extras_last_keepsake_wins() -> None:
    text = "Rare;;ManaOverTimeRefundKeepsake Epic;;BossPreDamageKeepsake"
    extras = transform(extraData=text).run["extraData"]
    assert len(extras) == 1
    assert extras[0]["codeName"] == "BossPreDamageKeepsake"
    assert extras[0]["rarity"] == "Epic"


def test_extras_last_hex_wins() -> None:
    text = "Common;;SpellSummonTrait Common;;SpellLaserTrait"
    extras = transform(extraData=text).run["extraData"]
    assert [extra["codeName"] for extra in extras] == ["SpellLaserTrait"]


def test_keepsake_text_for_rarity() -> None:
    extras = transform(extraData="Heroic;;ManaOverTimeRefundKeepsake").run["extraData"]
    assert extras[0]["description"] == "Gain <b>+150 Max Magick</b> this night."
    assert "boonType" not in extras[0]


@pytest.mark.parametrize("rarity", ["Legendary", "Duo", "Perfect", "<i>x</i>"])
def test_keepsake_rarity_normalised(rarity: str) -> None:
    result = transform(extraData=f"{rarity};;ManaOverTimeRefundKeepsake")
    keepsake = result.run["extraData"][0]
    assert keepsake["rarity"] == "Common"
    assert keepsake["description"] == "Gain <b>+50 Max Magick</b> this night."
    assert result.problems == (Problem("unknown_rarity", "extraData", rarity),)


def test_hex_has_no_effects() -> None:
    extras = transform(extraData="Epic;;SpellSummonTrait").run["extraData"]
    assert extras[0]["rarity"] == "Common"
    assert "effects" not in extras[0]


@pytest.mark.parametrize(
    ("code_name", "extra_type"),
    [
        ("ChaosNoMoneyCurse", "Chaos Curse"),
        ("ChaosRarityBlessing", "Chaos Curse"),
        ("FocusAttackDamageTrait", "Icarus"),
        ("HealingOnDeathCurse", "Medea"),
        ("RandomArcanaTrait", "Circe"),
    ],
)
def test_extra_common_without_effects(code_name: str, extra_type: str) -> None:
    extras = transform(extraData=f"Epic;;{code_name}").run["extraData"]
    assert extras[0]["extraType"] == extra_type
    assert extras[0]["rarity"] == "Common"
    assert "effects" not in extras[0]


@pytest.mark.parametrize(
    ("code_name", "extra_type"),
    [("InvulnerabilityDashBoon", "Athena"), ("HadesLifestealBoon", "Hades")],
)
def test_extra_keeps_rarity_and_effects(code_name: str, extra_type: str) -> None:
    extras = transform(extraData=f"Rare;;{code_name}").run["extraData"]
    assert extras[0]["extraType"] == extra_type
    assert extras[0]["rarity"] == "Rare"
    assert "effects" in extras[0]


def test_athena_effect_value() -> None:
    extras = transform(extraData="Epic;;InvulnerabilityDashBoon").run["extraData"]
    assert extras[0]["effects"] == [{"text": "Dash Damage:", "value": "20"}]


def test_hades_unknown_rarity() -> None:
    result = transform(extraData="Mythic;;HadesLifestealBoon")
    assert result.run["extraData"][0]["rarity"] == "Common"
    assert result.problems == (Problem("unknown_rarity", "extraData", "Mythic"),)


def test_extra_rules_cover_gods() -> None:
    assert set(EXTRA_RULES_BY_GOD) == {
        "Chaos",
        "Icarus",
        "Medea",
        "Circe",
        "Hades",
        "Athena",
    }


def test_extra_other_god_skipped() -> None:
    text = "Common;;ZeusWeaponBoon Common;;StaffDoubleAttackTrait"
    result = transform(extraData=text)
    assert result.run["extraData"] == []
    assert result.problems == ()


def test_extra_boon_without_gods_skipped() -> None:
    result = transform(previous(), extraData="Common;;StaffDoubleAttackTrait")
    assert result.run["extraData"] == []


def test_extra_unknown_code_name() -> None:
    result = transform(extraData="Common;;NoSuchKeepsake")
    assert result.run["extraData"] == []
    expected = Problem("unknown_code_name", "extraData", "NoSuchKeepsake")
    assert result.problems == (expected,)


def test_extra_suffixes_removed() -> None:
    text = "Rare;;ManaOverTimeRefundKeepsake_Expired Common;;SpellLaserTrait_Inactive"
    extras = transform(extraData=text).run["extraData"]
    assert [extra["codeName"] for extra in extras] == [
        "ManaOverTimeRefundKeepsake",
        "SpellLaserTrait",
    ]


# Elements


def test_elements_order_and_values() -> None:
    text = "Fire:1;;Water:0;;Earth:3;;Air:010;;Aether:999"
    elements = transform(elementalData=text).run["elementalData"]
    assert elements == [
        {"name": "Earth", "value": "3"},
        {"name": "Water", "value": "0"},
        {"name": "Air", "value": "10"},
        {"name": "Fire", "value": "1"},
        {"name": "Aether", "value": "999"},
    ]


@pytest.mark.parametrize(
    "count",
    [
        "<img src=x onerror=alert(1)>",
        "<b>9</b>",
        "-1",
        "2.5",
        "1000",
        "",
        "\u0663",
        "1:2",
        "9 9",
    ],
)
def test_element_hostile_count_dropped(count: str) -> None:
    result = transform(elementalData=f"Earth:2;;Fire:{count}")
    elements = result.run["elementalData"]
    assert elements[0] == {"name": "Earth", "value": "2"}
    assert elements[3] == {"name": "Fire"}
    assert problem_kinds(result) == ["invalid_level"]


def test_element_hostile_text_not_in_output() -> None:
    hostile = "Fire:<img src=x onerror=alert(1)>;;<script>:1;;Water:1"
    result = transform(elementalData=hostile)
    assert "<img" not in json.dumps(result.run)
    assert "<script>" not in json.dumps(result.run)


def test_element_unknown_names_ignored() -> None:
    elements = transform(elementalData="Lava:2;;fire:3").run["elementalData"]
    assert elements == [{"name": name} for name in ELEMENT_NAMES]


def test_element_missing_keeps_name() -> None:
    elements = transform(elementalData="Fire:2").run["elementalData"]
    assert elements[3] == {"name": "Fire", "value": "2"}
    assert elements[0] == {"name": "Earth"}


# Pins

PIN_BOONS = "Common;;PoseidonCastBoon Rare;;DoubleRewardBoon_Complete"


def test_pin_fields() -> None:
    pin = transform(boonData=PIN_BOONS, pinData="LuckyBoon").run["pinData"][0]
    assert pin["codeName"] == "LuckyBoon"
    assert pin["rarity"] == "Common"
    assert pin["effects"][0]["common"] == "30%"
    assert "boonType" not in pin


def test_pin_requirements_fulfilled() -> None:
    pin = transform(boonData=PIN_BOONS, pinData="LuckyBoon").run["pinData"][0]
    items = pin["requirements"][0]["items"]
    fulfilled = {item["codeName"]: item["fulfilled"] for item in items}
    assert fulfilled["DoubleRewardBoon"] is True
    assert fulfilled["PoseidonCastBoon"] is True
    assert fulfilled["PoseidonStatusBoon"] is False


def test_pin_requirement_items_common() -> None:
    pin = transform(boonData="Epic;;PoseidonCastBoon", pinData="LuckyBoon").run[
        "pinData"
    ][0]
    for row in pin["requirements"]:
        for item in row["items"]:
            assert item["rarity"] == "Common", item["codeName"]
            assert "boonType" in item, item["codeName"]


def test_pin_unfulfilled_without_boons() -> None:
    pin = transform(pinData="EchoExpirationBoon").run["pinData"][0]
    items = pin["requirements"][0]["items"]
    assert [item["fulfilled"] for item in items] == [False, False]


def test_pin_at_most_three() -> None:
    text = "LuckyBoon;;GoodStuffBoon;;RandomStatusBoon;;AresExCastBoon"
    pins = transform(pinData=text).run["pinData"]
    assert [pin["codeName"] for pin in pins] == [
        "LuckyBoon",
        "GoodStuffBoon",
        "RandomStatusBoon",
    ]


def test_pin_non_boons_skipped() -> None:
    result = transform(pinData="DummyWeaponStaff;;SpellSummonTrait;;LuckyBoon")
    assert [pin["codeName"] for pin in result.run["pinData"]] == ["LuckyBoon"]
    assert result.problems == ()


def test_pin_unknown_code_name() -> None:
    result = transform(pinData="NotABoon;;LuckyBoon")
    assert len(result.run["pinData"]) == 1
    assert result.problems == (Problem("unknown_code_name", "pinData", "NotABoon"),)


@pytest.mark.parametrize(
    ("code_name", "rarity"),
    [
        ("GoodStuffBoon", "Duo"),
        ("RandomStatusBoon", "Legendary"),
        ("ElementalDodgeBoon", "Infusion"),
        ("AresExCastBoon", "Common"),
    ],
)
def test_pin_rarity(code_name: str, rarity: str) -> None:
    pin = transform(pinData=code_name).run["pinData"][0]
    assert pin["rarity"] == rarity


def test_pin_hammer_common_text() -> None:
    pin = transform(pinData="StaffDoubleAttackTrait").run["pinData"][0]
    assert pin["description"] == "Your <b>Attacks</b> have <b>+30</b> Power."
    assert "effects" not in pin
    assert "requirements" not in pin


def test_pin_requirement_non_boons_left_out() -> None:
    document = load_document()
    rows = document["boons"]["EchoExpirationBoon"]["requirements"]
    rows[0]["items"] = ["ZeusWeaponBoon", "DaggerBlockAspect", "NoSuchBoon"]
    result = transform(parse_mappings(document), pinData="EchoExpirationBoon")
    items = result.run["pinData"][0]["requirements"][0]["items"]
    assert [item["codeName"] for item in items] == ["ZeusWeaponBoon"]


def test_pin_with_spaces_and_suffix() -> None:
    pins = transform(pinData=" LuckyBoon_Expired ;; GoodStuffBoon ").run["pinData"]
    assert [pin["codeName"] for pin in pins] == ["LuckyBoon", "GoodStuffBoon"]


# Vows and arcana


def test_vow_levels_and_fear() -> None:
    text = "4;;BossDifficultyShrineUpgrade 02;;BiomeSpeedShrineUpgrade"
    vows = transform(vowData=text).run["vowData"]
    assert [vow["level"] for vow in vows["vowList"]] == ["4", "2"]
    assert vows["totalFear"] == 12 + 3
    assert isinstance(vows["totalFear"], int)


def test_vow_level_zero() -> None:
    vows = transform(vowData="0;;BiomeSpeedShrineUpgrade").run["vowData"]
    assert vows["vowList"][0]["level"] == "0"
    assert vows["totalFear"] == 0


@pytest.mark.parametrize("level", ["4", "9", "x", "-1", "1.5", ""])
def test_vow_invalid_level_skipped(level: str) -> None:
    result = transform(vowData=f"{level};;BiomeSpeedShrineUpgrade")
    assert result.run["vowData"] == {"vowList": [], "totalFear": 0}
    assert result.problems == (Problem("invalid_level", "vowData", level),)


def test_vow_unknown_keeps_shape() -> None:
    result = transform(vowData="1;;NoSuchVow")
    assert result.run["vowData"] == {"vowList": [], "totalFear": 0}
    assert problem_kinds(result) == ["unknown_code_name"]


def test_arcana_rarity_by_level() -> None:
    text = (
        "1;;ChannelSlowMetaUpgrade 2;;DoorHealMetaUpgrade 3;;CastDamageMetaUpgrade "
        "04;;SorceryRegenMetaUpgrade"
    )
    arcana = transform(arcanaData=text).run["arcanaData"]
    rarities = [card["rarity"] for card in arcana["arcanaList"]]
    assert rarities == ["Common", "Rare", "Epic", "Heroic"]
    assert arcana["arcanaList"][0]["description"].startswith("Your <b>Omega Moves</b>")


def test_arcana_total_grasp() -> None:
    text = "3;;ChannelSlowMetaUpgrade 4;;DoorRerollMetaUpgrade"
    arcana = transform(arcanaData=text).run["arcanaData"]
    mappings = current()
    expected = (
        mappings.arcana["ChannelSlowMetaUpgrade"].grasp
        + mappings.arcana["DoorRerollMetaUpgrade"].grasp
    )
    assert arcana["totalGrasp"] == expected


@pytest.mark.parametrize("level", ["0", "5", "9", "x"])
def test_arcana_invalid_level_skipped(level: str) -> None:
    result = transform(arcanaData=f"{level};;ChannelSlowMetaUpgrade")
    assert result.run["arcanaData"] == {"arcanaList": [], "totalGrasp": 0}
    assert result.problems == (Problem("invalid_level", "arcanaData", level),)


def test_arcana_previous_names() -> None:
    result = transform(previous(), arcanaData="2;;ChanneledCast")
    assert result.run["arcanaData"]["arcanaList"][0]["name"] == "The Sorceress"


# Empty sections and totals


def test_unrecognised_sections_keep_shape() -> None:
    run = transform(
        boonData="Common;;Nope",
        extraData="Common;;Nope",
        pinData="Nope",
        vowData="1;;Nope",
        arcanaData="1;;Nope",
    ).run
    assert run["boonData"] == {"otherBoons": [], "totalBoons": 0}
    assert run["extraData"] == []
    assert run["pinData"] == []
    assert run["vowData"] == {"vowList": [], "totalFear": 0}
    assert run["arcanaData"] == {"arcanaList": [], "totalGrasp": 0}


def test_total_run_items_string() -> None:
    run = transform(
        boonData="Common;;ZeusWeaponBoon Rare;;ApolloWeaponBoon",
        weaponData="Rare;;DaggerBlockAspect",
        familiarData=PROTOCOL_2_FAMILIAR,
        extraData="Rare;;ManaOverTimeRefundKeepsake Common;;SpellSummonTrait",
    ).run
    assert run["totalRunItems"] == "6"


def test_total_run_items_empty() -> None:
    assert transform().run["totalRunItems"] == "0"


# Sample files for local development


def test_sample_run_has_no_unknown_names() -> None:
    mappings = parse_mappings(SAMPLE_MAPPINGS_FILE.read_bytes())
    body = json.loads(SAMPLE_RUN_FILE.read_bytes())
    result = transform_run_data(body["runData"], mappings)
    assert "unknown_code_name" not in problem_kinds(result)
    assert result.problems == ()


def test_sample_run_fills_every_section() -> None:
    mappings = parse_mappings(SAMPLE_MAPPINGS_FILE.read_bytes())
    body = json.loads(SAMPLE_RUN_FILE.read_bytes())
    assert body["argusProtocolVersion"] == "2"
    assert set(body["runData"]) == set(EMPTY_MARKERS)
    run = transform_run_data(body["runData"], mappings).run
    for key in EMPTY_MARKERS:
        assert run[key], key


# Generated input: no crash, no null, no input text copied into the output

KNOWN_TOKENS = [
    "ZeusWeaponBoon",
    "StaffDoubleAttackTrait_Expired",
    "EchoExpirationBoon",
    "ChaosNoMoneyCurse",
    "HadesLifestealBoon",
    "ManaOverTimeRefundKeepsake",
    "SpellSummonTrait",
    "DaggerBlockAspect",
    "LastStandFamiliar",
    "FamiliarCatResourceBonus",
    "BiomeSpeedShrineUpgrade",
    "ChannelSlowMetaUpgrade",
    "Fire",
    "Air",
    "Common",
    "Legendary",
    "Perfect",
    "Mythic",
    "0",
    "2",
    "08",
    "1000",
    "-1",
    "<img src=x onerror=alert(1)>",
    "__proto__",
    "NOBOONS",
]

section_text = st.lists(
    st.one_of(
        st.sampled_from(KNOWN_TOKENS),
        st.sampled_from([";;", " ", ":", "  "]),
        st.text(max_size=8),
    ),
    max_size=24,
).map("".join)

section_value = st.one_of(
    section_text,
    st.none(),
    st.integers(),
    st.floats(),
    st.lists(st.text(max_size=4), max_size=2),
)

run_data_strategy = st.dictionaries(
    st.sampled_from([*EMPTY_MARKERS, "extraKey"]), section_value
)

# A normalised count or level: 0, or one to three digits without a leading zero.
NUMBER_PATTERN = re.compile(r"0|[1-9][0-9]{0,2}")


@cache
def allowed_output_strings() -> frozenset[str]:
    """Collect every string the mapping files contain, plus fixed output words."""
    strings: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, str):
            strings.add(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                strings.add(key)
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(load_document())
    strings |= BOON_RARITIES | WEAPON_RARITIES | KEEPSAKE_RARITIES
    strings |= {"Hammer", "Boon", "Keepsake", "Hex"}
    strings |= set(ELEMENT_NAMES)
    strings |= {rule.extra_type for rule in EXTRA_RULES_BY_GOD.values()}
    return frozenset(strings)


def find_foreign_strings(value: Any) -> list[str]:
    """Return output strings that are neither mapping text nor a parsed number."""
    if isinstance(value, str):
        if value in allowed_output_strings() or NUMBER_PATTERN.fullmatch(value):
            return []
        return [value]
    found = []
    if isinstance(value, dict):
        for item in value.values():
            found += find_foreign_strings(item)
    elif isinstance(value, list):
        for item in value:
            found += find_foreign_strings(item)
    return found


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(run_data=run_data_strategy)
def test_generated_input_output_safe(run_data: dict[str, object]) -> None:
    result = transform_run_data(run_data, current())
    as_json(result.run)
    assert find_nulls(result.run) == []
    assert find_foreign_strings(result.run) == []
    for problem in result.problems:
        assert len(problem.value) <= 64
