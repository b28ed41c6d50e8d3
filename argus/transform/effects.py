"""Build effect rows for output from mapping effects."""

from __future__ import annotations

from collections.abc import Iterable

from argus.mappings import Effect


def build_effect_values(effects: Iterable[Effect], column: str) -> list[dict[str, str]]:
    """Build `{text, value}` rows, with `value` taken from the given column.

    A row whose effect has no such column is `{text}` alone.
    """
    rows = []
    for effect in effects:
        value = effect.value_for(column)
        if value is None:
            rows.append({"text": effect.text})
        else:
            rows.append({"text": effect.text, "value": value})
    return rows


def copy_effects(effects: Iterable[Effect]) -> list[dict[str, str]]:
    """Copy mapping effects unchanged into fresh dicts."""
    return [dict(effect.fields) for effect in effects]


def copy_effects_with_value(
    effects: Iterable[Effect], column: str
) -> list[dict[str, str]]:
    """Copy mapping effects and add `value` from the given column where present."""
    rows = []
    for effect in effects:
        row = dict(effect.fields)
        value = effect.value_for(column)
        if value is not None:
            row["value"] = value
        rows.append(row)
    return rows
