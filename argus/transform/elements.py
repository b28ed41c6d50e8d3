"""Build the elementalData section."""

from __future__ import annotations

from argus.transform.parsing import FIELD_SEPARATOR
from argus.transform.parsing import parse_level
from argus.transform.problems import ProblemList

ELEMENT_SECTION = "elementalData"

# The extension shows the elements in this order.
ELEMENT_NAMES = ("Earth", "Water", "Air", "Fire", "Aether")


def build_element_section(
    text: str | None, problems: ProblemList
) -> list[dict[str, str]]:
    """Build elementalData as five `{name, value}` rows in `ELEMENT_NAMES` order.

    The input is `Element:Count` fields. An element not sent, or sent with an invalid
    count, keeps only its name. Other element names are ignored.
    """
    if text is None:
        return []
    counts: dict[str, str | None] = {}
    for field in text.split(FIELD_SEPARATOR):
        name, _, count_text = field.strip().partition(":")
        if name not in ELEMENT_NAMES:
            continue
        # The extension renders the value as HTML, so only a parsed count is copied.
        count = parse_level(count_text, ELEMENT_SECTION, problems)
        counts[name] = None if count is None else str(count)
    rows = []
    for name in ELEMENT_NAMES:
        count = counts.get(name)
        if count is None:
            rows.append({"name": name})
        else:
            rows.append({"name": name, "value": count})
    return rows
