"""The transformed run as compact JSON text, memoised section by section.

During a run most sections repeat from one room to the next: the weapon, the
vows and the arcana never change, the familiar and keepsake rarely. Each
section's JSON fragment is therefore kept, keyed by the section's raw text,
and only the sections that changed are transformed and serialised again. The
result is the same text as serialising ``transform_run_data(...).run``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
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
from argus.transform.run import EMPTY_MARKERS
from argus.transform.vows import build_vow_section
from argus.transform.weapon import build_weapon_section


def to_json(value: Any) -> str:
    """Serialise compactly, keeping non-ASCII text as UTF-8 like the extension."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Fragment:
    """One section's JSON text, its problems and what totalRunItems needs of it.

    ``items`` is the section's share of totalRunItems. ``sent_boons`` is only
    set for boonData, whose boons decide which pin requirements are fulfilled.
    """

    json_text: str
    problems: tuple[Problem, ...]
    items: int = 0
    sent_boons: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SerializedRun:
    """A transformed run as JSON text, with the problems found in its input."""

    run_json: str
    problems: tuple[Problem, ...]


def _boons(text, mappings, sent_boons) -> Fragment:
    problems = ProblemList()
    section, sent = build_boon_section(text, mappings, problems)
    items = section.get("totalBoons", 0)
    return Fragment(to_json(section), problems.to_tuple(), items, sent)


def _simple(builder: Callable[..., Any], counted: Callable[[Any], int]):
    def build(text, mappings, sent_boons) -> Fragment:
        problems = ProblemList()
        section = builder(text, mappings, problems)
        return Fragment(to_json(section), problems.to_tuple(), counted(section))

    return build


def _elements(text, mappings, sent_boons) -> Fragment:
    problems = ProblemList()
    section = build_element_section(text, problems)
    return Fragment(to_json(section), problems.to_tuple())


def _pins(text, mappings, sent_boons) -> Fragment:
    problems = ProblemList()
    section = build_pin_section(text, mappings, sent_boons, problems)
    return Fragment(to_json(section), problems.to_tuple())


def _nothing(section: Any) -> int:
    return 0


def _one_unless_empty(section: Any) -> int:
    return 1 if section else 0


# Sections in the order of the run object; pinData depends on boonData's boons.
SECTION_BUILDERS = {
    "boonData": _boons,
    "weaponData": _simple(build_weapon_section, _one_unless_empty),
    "familiarData": _simple(build_familiar_section, _one_unless_empty),
    "extraData": _simple(build_extra_section, len),
    "elementalData": _elements,
    "pinData": _pins,
    "vowData": _simple(build_vow_section, _nothing),
    "arcanaData": _simple(build_arcana_section, _nothing),
}


class RunSerializer:
    """Transforms runs to JSON text, reusing fragments of unchanged sections.

    Thread-safe. At most ``max_entries`` fragments are kept; the oldest go
    first. A fragment is only reused with the mappings it was built from.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._fragments: dict[tuple, Fragment] = {}
        self._lock = threading.Lock()

    def serialize(
        self, run_data: Mapping[str, object], mappings: Mappings
    ) -> SerializedRun:
        """Return the run's JSON text, equal to serialising transform_run_data."""
        fragments: dict[str, Fragment] = {}
        sent_boons: frozenset[str] = frozenset()
        for section, builder in SECTION_BUILDERS.items():
            text = read_section(run_data, section, EMPTY_MARKERS[section])
            # Pins depend on the boons sent, so their key includes those.
            depends = sent_boons if section == "pinData" else None
            key = (mappings.source_sha256, section, text, depends)
            fragment = self._lookup(key)
            if fragment is None:
                fragment = builder(text, mappings, sent_boons)
                self._store(key, fragment)
            if section == "boonData":
                sent_boons = fragment.sent_boons
            fragments[section] = fragment

        total = sum(fragment.items for fragment in fragments.values())
        members = [f'"{name}":{f.json_text}' for name, f in fragments.items()]
        members.append(f'"totalRunItems":"{total}"')
        problems = tuple(
            problem for fragment in fragments.values() for problem in fragment.problems
        )
        return SerializedRun("{" + ",".join(members) + "}", problems)

    def _lookup(self, key: tuple) -> Fragment | None:
        with self._lock:
            return self._fragments.get(key)

    def _store(self, key: tuple, fragment: Fragment) -> None:
        with self._lock:
            if len(self._fragments) >= self.max_entries:
                del self._fragments[next(iter(self._fragments))]
            self._fragments[key] = fragment
