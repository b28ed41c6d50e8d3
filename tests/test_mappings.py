"""Tests for loading and validating the UI mapping file."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from argus.mappings import KINDS
from argus.mappings import MappingError
from argus.mappings import Mappings
from argus.mappings import parse_mappings

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("ARGUS_SHARED_DIR") or REPO_ROOT.parent / "shared")
CURRENT_FILE = SHARED_DIR / "data" / "ui_mappings.json"
PREVIOUS_FILE = SHARED_DIR / "data" / "ui_mappings_2025-10.json"
SAMPLE_FILE = REPO_ROOT / "ui_mappings.json"


@cache
def read_bytes(path: Path) -> bytes:
    return path.read_bytes()


def load_document(path: Path = CURRENT_FILE) -> dict[str, Any]:
    """Return a fresh parsed copy of a mapping file, safe to modify in a test."""
    return json.loads(read_bytes(path))


# Both generations of the real file


@pytest.mark.parametrize(
    "path", [CURRENT_FILE, PREVIOUS_FILE], ids=["current", "previous"]
)
def test_real_file_loads_all_entries(path: Path) -> None:
    document = load_document(path)
    mappings = parse_mappings(read_bytes(path))
    for kind in KINDS:
        assert mappings.counts()[kind] == len(document[kind]), kind


def test_counts_names_every_kind() -> None:
    counts = parse_mappings(read_bytes(CURRENT_FILE)).counts()
    assert list(counts) == list(KINDS)
    assert counts["boons"] > 0


def test_previous_generation_hammer_without_gods() -> None:
    mappings = parse_mappings(read_bytes(PREVIOUS_FILE))
    hammer = mappings.boons["StaffDoubleAttackTrait"]
    assert hammer.gods == ()
    assert hammer.boon_type == "Hammer"
    assert hammer.description is not None


def test_previous_generation_old_arcana_names() -> None:
    mappings = parse_mappings(read_bytes(PREVIOUS_FILE))
    assert "ChanneledCast" in mappings.arcana
    assert "ChannelSlowMetaUpgrade" not in mappings.arcana


def test_current_hammer_rarity_texts() -> None:
    hammer = parse_mappings(read_bytes(CURRENT_FILE)).boons["StaffDoubleAttackTrait"]
    assert hammer.boon_type == "Hammer"
    assert hammer.description is None
    assert hammer.description_for("Legendary") == hammer.rarity_texts["legendary"]
    assert hammer.description_for("Rare") == hammer.rarity_texts["common"]


def test_boon_type_of_god_boon() -> None:
    boon = parse_mappings(read_bytes(CURRENT_FILE)).boons["ZeusWeaponBoon"]
    assert boon.boon_type == "Boon"
    assert boon.slot_key == "weaponBoon"


def test_boon_type_empty_gods_is_hammer() -> None:
    document = load_document()
    document["boons"]["ZeusWeaponBoon"]["gods"] = []
    boon = parse_mappings(document).boons["ZeusWeaponBoon"]
    assert boon.boon_type == "Hammer"


def test_pin_rarity_from_first_effect() -> None:
    boons = parse_mappings(read_bytes(CURRENT_FILE)).boons
    assert boons["GoodStuffBoon"].pin_rarity == "Duo"
    assert boons["RandomStatusBoon"].pin_rarity == "Legendary"
    assert boons["ElementalDodgeBoon"].pin_rarity == "Infusion"
    assert boons["AresExCastBoon"].pin_rarity == "Common"


def test_requirements_keep_only_boons() -> None:
    document = load_document()
    rows = document["boons"]["EchoExpirationBoon"]["requirements"]
    rows[0]["items"] = ["ZeusWeaponBoon", "DaggerBlockAspect", "NoSuchBoon"]
    boon = parse_mappings(document).boons["EchoExpirationBoon"]
    assert boon.requirements is not None
    assert boon.requirements[0].boon_code_names == ("ZeusWeaponBoon",)


def test_unknown_extra_keys_allowed() -> None:
    document = load_document()
    document["boons"]["ZeusWeaponBoon"]["image"] = "ZeusWeaponBoon"
    document["weapons"]["DaggerBlockAspect"]["icon"] = {"size": [64, 64]}
    document["comment"] = "top-level keys other than the kinds are ignored"
    mappings = parse_mappings(document)
    assert mappings.weapons["DaggerBlockAspect"].fields["icon"]["size"] == (64, 64)


# Identity and immutability


def test_sha256_same_for_bytes_and_text() -> None:
    raw = read_bytes(CURRENT_FILE)
    from_bytes = parse_mappings(raw).source_sha256
    from_text = parse_mappings(raw.decode("utf-8")).source_sha256
    assert from_bytes == from_text
    assert len(from_bytes) == 64


def test_sha256_differs_between_files() -> None:
    current = parse_mappings(read_bytes(CURRENT_FILE)).source_sha256
    previous = parse_mappings(read_bytes(PREVIOUS_FILE)).source_sha256
    assert current != previous


def test_sha256_of_object_ignores_key_order() -> None:
    document = load_document()
    reordered = dict(reversed(list(document.items())))
    original = parse_mappings(document).source_sha256
    assert parse_mappings(reordered).source_sha256 == original


def test_mappings_frozen() -> None:
    mappings = parse_mappings(read_bytes(CURRENT_FILE))
    with pytest.raises(dataclasses.FrozenInstanceError):
        mappings.boons = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        mappings.boons["NewBoon"] = mappings.boons["ZeusWeaponBoon"]  # type: ignore
    with pytest.raises(TypeError):
        mappings.weapons["DaggerBlockAspect"].fields["name"] = "x"  # type: ignore


def test_mappings_independent_of_source() -> None:
    document = load_document()
    mappings = parse_mappings(document)
    document["boons"]["ZeusWeaponBoon"]["name"] = "Changed"
    document["weapons"]["DaggerBlockAspect"]["effects"][0]["rare"] = "Changed"
    assert mappings.boons["ZeusWeaponBoon"].name != "Changed"
    effect = mappings.weapons["DaggerBlockAspect"].effects[0]  # type: ignore[index]
    assert effect.value_for("rare") != "Changed"


# Invalid files


def set_field(kind: str, code_name: str, field: str, value: Any) -> Callable:
    def change(document: dict[str, Any]) -> None:
        document[kind][code_name][field] = value

    return change


def delete_field(kind: str, code_name: str, field: str) -> Callable:
    def change(document: dict[str, Any]) -> None:
        del document[kind][code_name][field]

    return change


def set_effect_field(kind: str, code_name: str, field: str, value: Any) -> Callable:
    def change(document: dict[str, Any]) -> None:
        document[kind][code_name]["effects"][0][field] = value

    return change


def delete_effect_field(kind: str, code_name: str, field: str) -> Callable:
    def change(document: dict[str, Any]) -> None:
        del document[kind][code_name]["effects"][0][field]

    return change


def set_requirement_field(field: str, value: Any) -> Callable:
    def change(document: dict[str, Any]) -> None:
        document["boons"]["EchoExpirationBoon"]["requirements"][0][field] = value

    return change


def set_kind(kind: str, value: Any) -> Callable:
    def change(document: dict[str, Any]) -> None:
        document[kind] = value

    return change


def delete_kind(kind: str) -> Callable:
    def change(document: dict[str, Any]) -> None:
        del document[kind]

    return change


def add_empty_code_name(document: dict[str, Any]) -> None:
    document["hexes"][""] = document["hexes"]["SpellSummonTrait"]


def remove_boon_texts(document: dict[str, Any]) -> None:
    del document["boons"]["ZeusWeaponBoon"]["description"]


INVALID_CASES = [
    ("missing kind", delete_kind("vows"), 'mappings: "vows" is missing'),
    (
        "kind not object",
        set_kind("arcana", []),
        'mappings: "arcana" must be an object of code name to entry',
    ),
    ("empty code name", add_empty_code_name, "hexes: code name '' must be"),
    (
        "entry not object",
        set_kind("hexes", {"SpellSummonTrait": "text"}),
        "hexes.SpellSummonTrait: the entry must be an object",
    ),
    (
        "boon name missing",
        delete_field("boons", "ZeusWeaponBoon", "name"),
        'boons.ZeusWeaponBoon: "name" is missing',
    ),
    (
        "boon name number",
        set_field("boons", "ZeusWeaponBoon", "name", 7),
        'boons.ZeusWeaponBoon: "name" must be a string',
    ),
    (
        "boon description null",
        set_field("boons", "ZeusWeaponBoon", "description", None),
        'boons.ZeusWeaponBoon: "description" must be a string',
    ),
    (
        "boon without texts",
        remove_boon_texts,
        'boons.ZeusWeaponBoon: "description" is missing',
    ),
    (
        "hammer legendary not string",
        set_field("boons", "StaffDoubleAttackTrait", "legendary", ["x"]),
        'boons.StaffDoubleAttackTrait: "legendary" must be a string',
    ),
    (
        "boon gods not strings",
        set_field("boons", "ZeusWeaponBoon", "gods", [1]),
        'boons.ZeusWeaponBoon: "gods" must be a list of strings',
    ),
    (
        "boon slot unknown",
        set_field("boons", "ZeusWeaponBoon", "slot", "Other"),
        'boons.ZeusWeaponBoon: "slot" must be one of Weapon, Special',
    ),
    (
        "effects not list",
        set_field("boons", "ZeusWeaponBoon", "effects", {"text": "x"}),
        'boons.ZeusWeaponBoon: "effects" must be a list of objects',
    ),
    (
        "effect not object",
        set_field("boons", "ZeusWeaponBoon", "effects", ["x"]),
        'boons.ZeusWeaponBoon: "effects[0]" must be an object',
    ),
    (
        "effect text missing",
        delete_effect_field("boons", "ZeusWeaponBoon", "text"),
        'boons.ZeusWeaponBoon: "effects[0].text" is missing',
    ),
    (
        "effect column null",
        set_effect_field("boons", "ZeusWeaponBoon", "common", None),
        'boons.ZeusWeaponBoon: "effects[0].common" must be a string',
    ),
    (
        "effect column number",
        set_effect_field("weapons", "DaggerBlockAspect", "rare", 30),
        'weapons.DaggerBlockAspect: "effects[0].rare" must be a string',
    ),
    (
        "requirements not list",
        set_field("boons", "EchoExpirationBoon", "requirements", "Zeus"),
        'boons.EchoExpirationBoon: "requirements" must be a list of objects',
    ),
    (
        "requirement type missing",
        set_requirement_field("type", None),
        'boons.EchoExpirationBoon: "requirements[0].type" must be a string',
    ),
    (
        "requirement items not strings",
        set_requirement_field("items", [{"codeName": "ZeusWeaponBoon"}]),
        'boons.EchoExpirationBoon: "requirements[0].items" must be a list of strings',
    ),
    (
        "weapon description missing",
        delete_field("weapons", "DaggerBlockAspect", "description"),
        'weapons.DaggerBlockAspect: "description" is missing',
    ),
    (
        "weapon extra null",
        set_field("weapons", "DaggerBlockAspect", "image", None),
        'weapons.DaggerBlockAspect: "image" must not be null',
    ),
    (
        "weapon nested extra infinite",
        set_field("weapons", "DaggerBlockAspect", "scale", [1.0, float("inf")]),
        'weapons.DaggerBlockAspect: "scale[1]" must be a finite number',
    ),
    (
        "familiar trait missing",
        delete_effect_field("familiars", "HealthFamiliar", "codeName"),
        'familiars.HealthFamiliar: "effects[0].codeName" is missing',
    ),
    (
        "familiar level column number",
        set_effect_field("familiars", "HealthFamiliar", "2", 20),
        'familiars.HealthFamiliar: "effects[0].2" must be a string',
    ),
    (
        "keepsake rarity text missing",
        delete_field("keepsakes", "ManaOverTimeRefundKeepsake", "heroic"),
        'keepsakes.ManaOverTimeRefundKeepsake: "heroic" is missing',
    ),
    (
        "hex description number",
        set_field("hexes", "SpellSummonTrait", "description", 3),
        'hexes.SpellSummonTrait: "description" must be a string',
    ),
    (
        "vow fears strings",
        set_field("vows", "EnemyDamageShrineUpgrade", "fears", ["0", "1", "3", "5"]),
        'vows.EnemyDamageShrineUpgrade: "fears" must be a list of numbers',
    ),
    (
        "vow fears boolean",
        set_field("vows", "EnemyDamageShrineUpgrade", "fears", [0, 1, 3, True]),
        'vows.EnemyDamageShrineUpgrade: "fears" must be a list of numbers',
    ),
    (
        "vow fears nan",
        set_field("vows", "EnemyDamageShrineUpgrade", "fears", [0, 1, 3, float("nan")]),
        'vows.EnemyDamageShrineUpgrade: "fears" must be a list of numbers',
    ),
    (
        "vow fears too short",
        set_field("vows", "EnemyDamageShrineUpgrade", "fears", [0, 1, 3]),
        'vows.EnemyDamageShrineUpgrade: "fears" must have as many entries as',
    ),
    (
        "vow descriptions empty",
        set_field("vows", "EnemyDamageShrineUpgrade", "descriptions", []),
        'vows.EnemyDamageShrineUpgrade: "descriptions" must have 1 or more entries',
    ),
    (
        "vow descriptions null item",
        set_field("vows", "EnemyDamageShrineUpgrade", "descriptions", ["a", None]),
        'vows.EnemyDamageShrineUpgrade: "descriptions" must be a list of strings',
    ),
    (
        "arcana grasp string",
        set_field("arcana", "ChannelSlowMetaUpgrade", "grasp", "1"),
        'arcana.ChannelSlowMetaUpgrade: "grasp" must be a finite number',
    ),
    (
        "arcana grasp missing",
        delete_field("arcana", "ChannelSlowMetaUpgrade", "grasp"),
        'arcana.ChannelSlowMetaUpgrade: "grasp" must be a finite number',
    ),
    (
        "arcana descriptions short",
        set_field("arcana", "ChannelSlowMetaUpgrade", "descriptions", ["a"] * 4),
        'arcana.ChannelSlowMetaUpgrade: "descriptions" must have 5 or more entries',
    ),
]


@pytest.mark.parametrize(
    ("change", "message"),
    [(change, message) for _, change, message in INVALID_CASES],
    ids=[name for name, _, _ in INVALID_CASES],
)
def test_invalid_mapping_rejected(change: Callable, message: str) -> None:
    document = load_document()
    change(document)
    with pytest.raises(MappingError) as caught:
        parse_mappings(document)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[]", "mappings: the top level must be a JSON object"),
        (b'{"boons": ', "mappings: invalid JSON"),
        (b"\xff\xfe{}", "mappings: invalid UTF-8"),
        ('{"boons": NaN}', "mappings: NaN is not valid JSON"),
        ('{"boons": -Infinity}', "mappings: -Infinity is not valid JSON"),
    ],
    ids=["list", "truncated", "not utf-8", "nan", "infinity"],
)
def test_invalid_text_rejected(raw: bytes | str, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_mappings(raw)
    assert message in str(caught.value)


def test_nan_fear_in_text_rejected() -> None:
    text = read_bytes(CURRENT_FILE).decode("utf-8")
    broken = text.replace('"fears": [0, 1, 3, 5]', '"fears": [0, 1, 3, NaN]', 1)
    assert broken != text
    with pytest.raises(MappingError):
        parse_mappings(broken)


def test_mapping_error_is_value_error() -> None:
    assert issubclass(MappingError, ValueError)


# The development sample at the repository root


def sample_mappings() -> Mappings:
    return parse_mappings(SAMPLE_FILE.read_bytes())


def test_sample_parses_with_every_kind() -> None:
    counts = sample_mappings().counts()
    for kind in KINDS:
        assert 3 <= counts[kind] <= 6, kind


def test_sample_has_rarity_text_hammer() -> None:
    hammers = [
        boon
        for boon in sample_mappings().boons.values()
        if boon.boon_type == "Hammer" and "legendary" in boon.rarity_texts
    ]
    assert hammers


def test_sample_pin_requirements_resolve() -> None:
    boons = sample_mappings().boons
    document = json.loads(SAMPLE_FILE.read_bytes())
    pinnable = [boon for boon in boons.values() if boon.requirements]
    assert pinnable
    for boon in pinnable:
        raw_rows = document["boons"][boon.code_name]["requirements"]
        for row, raw_row in zip(boon.requirements or (), raw_rows, strict=True):
            assert row.boon_code_names == tuple(raw_row["items"]), boon.code_name


def test_sample_has_chaos_and_hades_extras() -> None:
    boons = sample_mappings().boons.values()
    first_gods = {boon.gods[0] for boon in boons if boon.gods}
    assert "Chaos" in first_gods
    assert "Hades" in first_gods


def test_lone_surrogate_rejected():
    document = json.loads(CURRENT_FILE.read_text())
    document["weapons"]["BaseStaffAspect"]["name"] = "\ud800"

    with pytest.raises(MappingError, match="not valid Unicode"):
        parse_mappings(json.dumps(document))
