"""Rarities the game sends for each item type."""

from __future__ import annotations

from argus.mappings import KEEPSAKE_RARITIES as _KEEPSAKE_RARITY_ORDER

BOON_RARITIES = frozenset(
    {"Common", "Rare", "Epic", "Heroic", "Legendary", "Duo", "Infusion"}
)
WEAPON_RARITIES = frozenset(
    {"Common", "Rare", "Epic", "Heroic", "Legendary", "Perfect"}
)
KEEPSAKE_RARITIES = frozenset(_KEEPSAKE_RARITY_ORDER)

# Arcana cards show their level as a rarity.
ARCANA_RARITY_BY_LEVEL = {1: "Common", 2: "Rare", 3: "Epic", 4: "Heroic"}
