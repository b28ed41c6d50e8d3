"""Validate the UI mapping file and index it for the run-data transformation.

The mapping file is a JSON object with one object per kind (`boons`, `weapons`,
`familiars`, `keepsakes`, `hexes`, `vows`, `arcana`), each mapping a game code name to
its display entry. `parse_mappings` checks every field the transformation reads and
builds an immutable `Mappings`, once per published file, so that each request only
looks records up.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import replace
from types import MappingProxyType
from typing import Any

KINDS = ("boons", "weapons", "familiars", "keepsakes", "hexes", "vows", "arcana")

# A boon's `slot` becomes the output key `<slot lower-cased>Boon`, so only the slots
# the extension renders are accepted.
BOON_SLOTS = ("Weapon", "Special", "Cast", "Sprint", "Mana")

# Keys of the rarity-keyed texts that hammers carry instead of `description`.
BOON_TEXT_KEYS = ("common", "rare", "epic", "heroic", "legendary", "duo", "infusion")

KEEPSAKE_RARITIES = ("Common", "Rare", "Epic", "Heroic")

# A pinned boon shows the first of these rarities that its first effect has a
# column for, and Common otherwise.
PIN_RARITY_COLUMNS = (
    ("duo", "Duo"),
    ("infusion", "Infusion"),
    ("legendary", "Legendary"),
)

# Arcana descriptions are indexed by card level, from level 0 to level 4.
MIN_ARCANA_DESCRIPTIONS = 5


class MappingError(ValueError):
    """Error for an invalid mapping file, naming the kind, code name and field."""


@dataclass(frozen=True, slots=True)
class Effect:
    """One effect row of a mapping entry, with its label and every field as written."""

    text: str
    fields: Mapping[str, str]

    def value_for(self, column: str) -> str | None:
        """Return the effect's value in a rarity or level column, if it has one."""
        if column == "text":
            return None
        return self.fields.get(column)


@dataclass(frozen=True, slots=True)
class Requirement:
    """A pin requirement row, with its items limited to code names of known boons."""

    type: str
    boon_code_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Boon:
    """A boon, hammer or other god's blessing, with the derived display fields."""

    code_name: str
    name: str
    gods: tuple[str, ...]
    boon_type: str
    slot_key: str | None
    description: str | None
    rarity_texts: Mapping[str, str]
    effects: tuple[Effect, ...] | None
    requirements: tuple[Requirement, ...] | None
    pin_rarity: str

    def description_for(self, rarity: str) -> str:
        """Return the description, or the rarity-keyed text with `common` fallback."""
        if self.description is not None:
            return self.description
        text = self.rarity_texts.get(rarity.lower())
        if text is None:
            return self.rarity_texts["common"]
        return text


@dataclass(frozen=True, slots=True)
class Weapon:
    """A weapon or aspect, with its effects and its other entry fields."""

    code_name: str
    fields: Mapping[str, Any]
    effects: tuple[Effect, ...] | None


@dataclass(frozen=True, slots=True)
class FamiliarEffect:
    """A familiar effect row, keyed by the trait code name whose level selects it."""

    trait_code_name: str
    effect: Effect


@dataclass(frozen=True, slots=True)
class Familiar:
    """A familiar with one effect row per trait."""

    code_name: str
    name: str
    description: str
    effects: tuple[FamiliarEffect, ...]


@dataclass(frozen=True, slots=True)
class Keepsake:
    """A keepsake with its description for each keepsake rarity."""

    code_name: str
    name: str
    descriptions: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Hex:
    """A hex (spell) as shown among the extras."""

    code_name: str
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class Vow:
    """An Oath vow, with descriptions and fear values indexed by vow level."""

    code_name: str
    name: str
    descriptions: tuple[str, ...]
    fears: tuple[int | float, ...]


@dataclass(frozen=True, slots=True)
class Arcana:
    """An arcana card, with its grasp cost and descriptions indexed by card level."""

    code_name: str
    name: str
    grasp: int | float
    descriptions: tuple[str, ...]


@dataclass(frozen=True)
class Mappings:
    """Validated, read-only mapping records, indexed by code name for each kind.

    Build it with `parse_mappings`. Nothing in it may change after construction,
    because one instance serves every request until the next file is published.
    """

    boons: Mapping[str, Boon]
    weapons: Mapping[str, Weapon]
    familiars: Mapping[str, Familiar]
    keepsakes: Mapping[str, Keepsake]
    hexes: Mapping[str, Hex]
    vows: Mapping[str, Vow]
    arcana: Mapping[str, Arcana]
    known_code_names: frozenset[str]
    source_sha256: str

    def counts(self) -> dict[str, int]:
        """Count the entries of each kind, for logs."""
        return {kind: len(getattr(self, kind)) for kind in KINDS}


def parse_mappings(raw: bytes | str | Mapping[str, Any]) -> Mappings:
    """Validate a mapping file (JSON text or parsed object) and index it.

    Raises MappingError on invalid JSON, a missing kind, or an entry field that the
    transformation would fail on or turn into null. Unknown extra keys are allowed.
    """
    document = _load_document(raw)
    if not isinstance(document, Mapping):
        raise MappingError("mappings: the top level must be a JSON object")
    entries = {kind: _read_kind(document, kind) for kind in KINDS}

    boons = _index(entries["boons"], "boons", _read_boon)
    _resolve_requirements(boons)
    indexed = {
        "boons": boons,
        "weapons": _index(entries["weapons"], "weapons", _read_weapon),
        "familiars": _index(entries["familiars"], "familiars", _read_familiar),
        "keepsakes": _index(entries["keepsakes"], "keepsakes", _read_keepsake),
        "hexes": _index(entries["hexes"], "hexes", _read_hex),
        "vows": _index(entries["vows"], "vows", _read_vow),
        "arcana": _index(entries["arcana"], "arcana", _read_arcana),
    }
    known = frozenset(name for records in indexed.values() for name in records)
    return Mappings(
        **{kind: MappingProxyType(records) for kind, records in indexed.items()},
        known_code_names=known,
        source_sha256=_sha256_of(raw, document),
    )


def thaw(value: Any) -> Any:
    """Copy a frozen mapping value into fresh plain dicts and lists for output."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


# Loading


def _reject_constant(name: str) -> Any:
    raise MappingError(f"mappings: {name} is not valid JSON")


def _load_document(raw: bytes | str | Mapping[str, Any]) -> Any:
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise MappingError(f"mappings: invalid UTF-8: {error}") from error
    if not isinstance(raw, str):
        raise MappingError("mappings: expected JSON text or a JSON object")
    try:
        # Python's json module accepts NaN and Infinity, which JSON does not.
        document = json.loads(raw, parse_constant=_reject_constant)
    except (json.JSONDecodeError, RecursionError) as error:
        raise MappingError(f"mappings: invalid JSON: {error}") from error
    try:
        # JSON escapes can spell lone surrogates, which no UTF-8 message to
        # Twitch could carry.
        json.dumps(document, ensure_ascii=False).encode()
    except UnicodeEncodeError as error:
        raise MappingError(f"mappings: text is not valid Unicode: {error}") from None
    return document


def _sha256_of(raw: bytes | str | Mapping[str, Any], document: Any) -> str:
    if isinstance(raw, bytes):
        return hashlib.sha256(raw).hexdigest()
    if isinstance(raw, str):
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()
    try:
        text = json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
    except (TypeError, ValueError) as error:
        raise MappingError(f"mappings: not serialisable as JSON: {error}") from error
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_kind(document: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    if kind not in document:
        raise MappingError(f'mappings: "{kind}" is missing')
    entries = document[kind]
    if not isinstance(entries, Mapping):
        message = "must be an object of code name to entry"
        raise MappingError(f'mappings: "{kind}" {message}')
    return entries


def _index(
    entries: Mapping[str, Any], kind: str, read_entry: Callable[[_Entry], Any]
) -> dict[str, Any]:
    records = {}
    for code_name, raw_entry in entries.items():
        if not isinstance(code_name, str) or not code_name:
            message = f"code name {code_name!r} must be a non-empty string"
            raise MappingError(f"{kind}: {message}")
        records[code_name] = read_entry(_Entry(kind, code_name, raw_entry))
    return records


# Field checks


class _Entry:
    """One raw mapping entry, read field by field with error messages that name it."""

    def __init__(self, kind: str, code_name: str, raw: Any) -> None:
        self.kind = kind
        self.code_name = code_name
        if not isinstance(raw, Mapping):
            raise MappingError(f"{kind}.{code_name}: the entry must be an object")
        self.raw = raw

    def error(self, field: str, problem: str) -> MappingError:
        return MappingError(f'{self.kind}.{self.code_name}: "{field}" {problem}')

    def has(self, field: str) -> bool:
        return field in self.raw

    def string(self, field: str) -> str:
        if field not in self.raw:
            raise self.error(field, "is missing")
        value = self.raw[field]
        if not isinstance(value, str):
            raise self.error(field, "must be a string")
        return value

    def optional_string(self, field: str) -> str | None:
        if field not in self.raw:
            return None
        return self.string(field)

    def string_list(self, field: str, min_length: int = 1) -> tuple[str, ...]:
        values = self.raw.get(field)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self.error(field, "must be a list of strings")
        if len(values) < min_length:
            raise self.error(field, f"must have {min_length} or more entries")
        return tuple(values)

    def optional_string_list(self, field: str) -> tuple[str, ...] | None:
        if field not in self.raw:
            return None
        return self.string_list(field, min_length=0)

    def number(self, field: str) -> int | float:
        value = self.raw.get(field)
        if not _is_number(value):
            raise self.error(field, "must be a finite number")
        return value

    def number_list(self, field: str) -> tuple[int | float, ...]:
        values = self.raw.get(field)
        if not isinstance(values, list) or not all(_is_number(v) for v in values):
            raise self.error(field, "must be a list of numbers")
        return tuple(values)

    def effects(self, field: str = "effects") -> tuple[Effect, ...] | None:
        if field not in self.raw:
            return None
        rows = self.raw[field]
        if not isinstance(rows, list):
            raise self.error(field, "must be a list of objects")
        return tuple(self._effect(f"{field}[{i}]", row) for i, row in enumerate(rows))

    def _effect(self, path: str, row: Any) -> Effect:
        if not isinstance(row, Mapping):
            raise self.error(path, "must be an object")
        if "text" not in row:
            raise self.error(f"{path}.text", "is missing")
        for key, value in row.items():
            # Effect columns are copied into the output, so each must be a string.
            if not isinstance(key, str) or not isinstance(value, str):
                raise self.error(f"{path}.{key}", "must be a string")
        return Effect(text=row["text"], fields=MappingProxyType(dict(row)))

    def json_safe_extras(self, known_fields: tuple[str, ...]) -> dict[str, Any]:
        """Freeze the entry's other fields after checking they contain no null."""
        extras = {}
        for field, value in self.raw.items():
            if field not in known_fields:
                _check_json_safe(self, field, value)
                extras[field] = _freeze(value)
        return extras


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


def _check_json_safe(entry: _Entry, path: str, value: Any) -> None:
    if value is None:
        raise entry.error(path, "must not be null")
    if isinstance(value, float) and not math.isfinite(value):
        raise entry.error(path, "must be a finite number")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise entry.error(path, "must have string keys")
            _check_json_safe(entry, f"{path}.{key}", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_safe(entry, f"{path}[{index}]", item)
    elif not isinstance(value, (str, int, float)):
        raise entry.error(path, "must be a JSON value")


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


# Readers, one per kind


def _read_boon(entry: _Entry) -> Boon:
    name = entry.string("name")
    gods = entry.optional_string_list("gods") or ()
    description = entry.optional_string("description")
    rarity_texts = _read_rarity_texts(entry)
    if description is None and "common" not in rarity_texts:
        raise entry.error("description", 'is missing (a boon needs it or "common")')
    effects = entry.effects()
    return Boon(
        code_name=entry.code_name,
        name=name,
        gods=gods,
        boon_type="Hammer" if not gods or gods[0] == "Hammer" else "Boon",
        slot_key=_read_slot_key(entry),
        description=description,
        rarity_texts=MappingProxyType(rarity_texts),
        effects=effects,
        requirements=_read_requirements(entry),
        pin_rarity=_pin_rarity(effects),
    )


def _read_rarity_texts(entry: _Entry) -> dict[str, str]:
    texts = {}
    for key in BOON_TEXT_KEYS:
        text = entry.optional_string(key)
        if text is not None:
            texts[key] = text
    return texts


def _read_slot_key(entry: _Entry) -> str | None:
    slot = entry.optional_string("slot")
    if slot is None:
        return None
    if slot not in BOON_SLOTS:
        raise entry.error("slot", f"must be one of {', '.join(BOON_SLOTS)}")
    return slot.lower() + "Boon"


def _read_requirements(entry: _Entry) -> tuple[Requirement, ...] | None:
    if not entry.has("requirements"):
        return None
    rows = entry.raw["requirements"]
    if not isinstance(rows, list):
        raise entry.error("requirements", "must be a list of objects")
    requirements = []
    for index, row in enumerate(rows):
        path = f"requirements[{index}]"
        if not isinstance(row, Mapping):
            raise entry.error(path, "must be an object")
        row_type = row.get("type")
        items = row.get("items")
        if not isinstance(row_type, str):
            raise entry.error(f"{path}.type", "must be a string")
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise entry.error(f"{path}.items", "must be a list of strings")
        requirements.append(Requirement(type=row_type, boon_code_names=tuple(items)))
    return tuple(requirements)


def _pin_rarity(effects: tuple[Effect, ...] | None) -> str:
    if not effects:
        return "Common"
    for column, rarity in PIN_RARITY_COLUMNS:
        if column in effects[0].fields:
            return rarity
    return "Common"


def _resolve_requirements(boons: dict[str, Boon]) -> None:
    """Drop requirement items that are not boons, once, instead of per request."""
    for code_name, boon in boons.items():
        if boon.requirements is None:
            continue
        rows = tuple(
            Requirement(
                type=row.type,
                boon_code_names=tuple(i for i in row.boon_code_names if i in boons),
            )
            for row in boon.requirements
        )
        boons[code_name] = replace(boon, requirements=rows)


def _read_weapon(entry: _Entry) -> Weapon:
    fields = {"name": entry.string("name"), "description": entry.string("description")}
    fields.update(entry.json_safe_extras(("name", "description", "effects")))
    return Weapon(
        code_name=entry.code_name,
        fields=MappingProxyType(fields),
        effects=entry.effects(),
    )


def _read_familiar(entry: _Entry) -> Familiar:
    effects = []
    for index, effect in enumerate(entry.effects() or ()):
        trait = effect.fields.get("codeName")
        if trait is None:
            raise entry.error(f"effects[{index}].codeName", "is missing")
        effects.append(FamiliarEffect(trait_code_name=trait, effect=effect))
    return Familiar(
        code_name=entry.code_name,
        name=entry.string("name"),
        description=entry.string("description"),
        effects=tuple(effects),
    )


def _read_keepsake(entry: _Entry) -> Keepsake:
    descriptions = {
        rarity: entry.string(rarity.lower()) for rarity in KEEPSAKE_RARITIES
    }
    return Keepsake(
        code_name=entry.code_name,
        name=entry.string("name"),
        descriptions=MappingProxyType(descriptions),
    )


def _read_hex(entry: _Entry) -> Hex:
    # Hex effects are not read: the extension shows hexes without effects.
    return Hex(
        code_name=entry.code_name,
        name=entry.string("name"),
        description=entry.string("description"),
    )


def _read_vow(entry: _Entry) -> Vow:
    descriptions = entry.string_list("descriptions")
    fears = entry.number_list("fears")
    if len(fears) != len(descriptions):
        raise entry.error("fears", 'must have as many entries as "descriptions"')
    return Vow(
        code_name=entry.code_name,
        name=entry.string("name"),
        descriptions=descriptions,
        fears=fears,
    )


def _read_arcana(entry: _Entry) -> Arcana:
    return Arcana(
        code_name=entry.code_name,
        name=entry.string("name"),
        grasp=entry.number("grasp"),
        descriptions=entry.string_list("descriptions", MIN_ARCANA_DESCRIPTIONS),
    )
