"""RunSerializer: memoised JSON text equal to serialising the transformation."""

from __future__ import annotations

import json

import pytest

from argus.mappings import parse_mappings
from argus.transform import transform_run_data
from argus.transform.serialized import RunSerializer
from argus.transform.serialized import to_json
from tests import support

CASES = json.loads(
    (support.SHARED_DIR / "fixtures" / "run_data_cases.json").read_text()
)
MAPPINGS = {
    name: parse_mappings((support.SHARED_DIR / "data" / name).read_bytes())
    for name in sorted({case["mappings"] for case in CASES})
}
SHARED_SERIALIZER = RunSerializer()


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_serializer_matches_transformation(case):
    mappings = MAPPINGS[case["mappings"]]
    expected = transform_run_data(case["runData"], mappings)

    fresh = RunSerializer().serialize(case["runData"], mappings)
    shared = SHARED_SERIALIZER.serialize(case["runData"], mappings)

    assert fresh.run_json == to_json(expected.run)
    assert fresh.problems == expected.problems
    assert shared.run_json == fresh.run_json
    assert shared.problems == fresh.problems
    assert json.loads(fresh.run_json) == case["expected"]


def test_pins_follow_changed_boons():
    mappings = MAPPINGS["ui_mappings.json"]
    case = next(c for c in CASES if c["name"] == "pins partly fulfilled")
    serializer = RunSerializer()
    serializer.serialize(case["runData"], mappings)
    fewer_boons = dict(case["runData"], boonData="NOBOONS")

    result = serializer.serialize(fewer_boons, mappings)

    expected = transform_run_data(fewer_boons, mappings).run
    assert result.run_json == to_json(expected)


def test_fragments_are_bounded():
    mappings = MAPPINGS["ui_mappings.json"]
    serializer = RunSerializer(max_entries=10)
    for number in range(50):
        run_data = {"elementalData": f"Fire:{number}"}
        result = serializer.serialize(run_data, mappings)
        assert json.loads(result.run_json)["elementalData"][3] == {
            "name": "Fire",
            "value": str(number),
        }

    assert len(serializer._fragments) <= 10


def test_fragments_keyed_by_mappings():
    case = next(c for c in CASES if c["name"] == "nominal protocol 1")
    serializer = RunSerializer()
    old = serializer.serialize(case["runData"], MAPPINGS["ui_mappings_2025-10.json"])
    new = serializer.serialize(case["runData"], MAPPINGS["ui_mappings.json"])

    expected = transform_run_data(case["runData"], MAPPINGS["ui_mappings.json"]).run
    assert new.run_json == to_json(expected)
    assert new.run_json != old.run_json
