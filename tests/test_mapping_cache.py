"""MappingCache: loading, refreshing and keeping the last valid mappings."""

from __future__ import annotations

import json
import logging
import time

import pytest

from argus.mapping_cache import MAPPINGS_KEY
from argus.mapping_cache import MappingCache
from argus.mapping_cache import publish_mappings
from argus.mappings import MappingError
from argus.store import open_store
from tests import support

CURRENT = support.SHARED_DIR / "data" / "ui_mappings.json"
PREVIOUS = support.SHARED_DIR / "data" / "ui_mappings_2025-10.json"


@pytest.fixture
def store(sqlite_url):
    return open_store(sqlite_url)


def test_cache_loads_on_first_use(store):
    store.put(MAPPINGS_KEY, CURRENT.read_bytes())
    cache = MappingCache(store, refresh_seconds=60)

    mappings = cache.current()

    assert mappings is not None
    assert mappings.counts()["boons"] == 368


def test_cache_without_mappings_is_empty(store, caplog):
    cache = MappingCache(store, refresh_seconds=60)

    with caplog.at_level(logging.ERROR):
        assert cache.current() is None
        assert cache.current() is None

    assert cache.refresh() == "missing"
    assert len([r for r in caplog.records if "no mappings" in r.message]) == 1


def test_refresh_reports_unchanged(store):
    store.put(MAPPINGS_KEY, CURRENT.read_bytes())
    cache = MappingCache(store, refresh_seconds=60)
    first = cache.current()

    assert cache.refresh() == "unchanged"
    assert cache.current() is first


def test_refresh_loads_new_version(store):
    store.put(MAPPINGS_KEY, PREVIOUS.read_bytes())
    cache = MappingCache(store, refresh_seconds=60)
    previous = cache.current()
    store.put(MAPPINGS_KEY, CURRENT.read_bytes())

    assert cache.refresh() == "loaded"
    assert cache.current() is not previous
    assert cache.current().source_sha256 != previous.source_sha256


def test_invalid_version_keeps_last_good(store, caplog):
    store.put(MAPPINGS_KEY, CURRENT.read_bytes())
    cache = MappingCache(store, refresh_seconds=60)
    good = cache.current()
    broken = json.loads(CURRENT.read_text())
    broken["vows"]["EnemyDamageShrineUpgrade"]["fears"] = "many"
    store.put(MAPPINGS_KEY, json.dumps(broken).encode())

    with caplog.at_level(logging.ERROR):
        result = cache.refresh()

    assert result == "invalid"
    assert cache.current() is good
    assert any("invalid" in record.message for record in caplog.records)


def test_not_json_keeps_last_good(store):
    store.put(MAPPINGS_KEY, CURRENT.read_bytes())
    cache = MappingCache(store, refresh_seconds=60)
    good = cache.current()
    store.put(MAPPINGS_KEY, b"{not json")

    assert cache.refresh() == "invalid"
    assert cache.current() is good


def test_background_refresh_picks_up_publish(store):
    store.put(MAPPINGS_KEY, PREVIOUS.read_bytes())
    cache = MappingCache(store, refresh_seconds=0.05)
    previous = cache.current()
    cache.start()
    try:
        publish_mappings(store, CURRENT.read_bytes())
        deadline = time.monotonic() + 5
        while cache.current() is previous and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        cache.stop()

    assert cache.current() is not previous


def test_publish_rejects_invalid_file(store):
    with pytest.raises(MappingError):
        publish_mappings(store, b'{"boons": []}')

    assert store.get(MAPPINGS_KEY) is None


def test_cli_publish_rejects_invalid_file(runner, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"boons": {}}')

    result = runner.invoke(args=["argus", "update-ui-mappings", str(bad)])

    assert result.exit_code != 0
    assert "is not valid" in result.output
    assert "Traceback" not in result.output


def test_cli_publish_reports_counts(runner):
    result = runner.invoke(args=["argus", "update-ui-mappings", str(PREVIOUS)])

    assert result.exit_code == 0
    assert "368 boons" in result.output
