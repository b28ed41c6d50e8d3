"""Tests of LinkRegistry against SQLite and moto S3 stores."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from argus.links import CHANNEL_PREFIX
from argus.links import TOKEN_PREFIX
from argus.links import LinkRegistry
from argus.links import describe_link
from argus.links import hash_token
from argus.store import ObjectStore
from argus.store import encode_json
from argus.store import open_store

CHANNEL = "111111111"
OTHER_CHANNEL = "222222222"
CONCURRENT_CHANNELS = 40
CONCURRENT_RELINKS = 12


class FakeClock:
    """A clock that advances one second per call."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1
        return self.now


@pytest.fixture
def store(store_url: str) -> ObjectStore:
    return open_store(store_url)


@pytest.fixture
def registry(store: ObjectStore) -> LinkRegistry:
    return LinkRegistry(store, clock=FakeClock())


def run_concurrently(function, arguments: list) -> list:
    """Call ``function`` once per argument on its own thread, all started together."""
    start = threading.Barrier(len(arguments))

    def call(argument):
        start.wait()
        return function(argument)

    with ThreadPoolExecutor(len(arguments)) as executor:
        futures = [executor.submit(call, argument) for argument in arguments]
        return [future.result() for future in futures]


def test_link_then_find(registry: LinkRegistry) -> None:
    token = registry.link(CHANNEL, username="melinoe", picture="https://p/1.png")

    link = registry.find_link(token)

    assert link is not None
    assert link.channel_id == CHANNEL
    assert link.username == "melinoe"
    assert link.picture == "https://p/1.png"
    assert link.token_hash == hash_token(token)
    assert link.linked_at == 1_700_000_001.0


def test_link_token_format(registry: LinkRegistry) -> None:
    tokens = {registry.link(str(channel)) for channel in range(5)}

    assert len(tokens) == 5
    for token in tokens:
        assert len(token) == 43
        assert token.replace("-", "").replace("_", "").isalnum()


def test_find_unknown_token(registry: LinkRegistry) -> None:
    registry.link(CHANNEL)

    assert registry.find_link("not-a-token") is None
    assert registry.find_link("") is None


def test_relink_replaces_token(registry: LinkRegistry, store: ObjectStore) -> None:
    old_token = registry.link(CHANNEL, username="old")

    new_token = registry.link(CHANNEL, username="new")

    assert new_token != old_token
    assert registry.find_link(old_token) is None
    assert registry.find_link(new_token).username == "new"
    assert store.get(TOKEN_PREFIX + hash_token(old_token)) is None
    assert registry.get_link(CHANNEL).token_hash == hash_token(new_token)


def test_relink_with_leftover_index(registry: LinkRegistry, store: ObjectStore) -> None:
    old_token = registry.link(CHANNEL)
    new_token = registry.link(CHANNEL)
    # An index object left behind when deleting it failed must not revive it.
    store.put(TOKEN_PREFIX + hash_token(old_token), encode_json({"channelId": CHANNEL}))

    assert registry.find_link(old_token) is None
    assert registry.find_link(new_token) is not None


def test_relink_same_imported_token(registry: LinkRegistry) -> None:
    token = registry.link(CHANNEL, token="imported-token")

    again = registry.link(CHANNEL, token="imported-token")

    assert again == token
    assert registry.find_link(token).channel_id == CHANNEL


def test_link_other_channel_independent(registry: LinkRegistry) -> None:
    token = registry.link(CHANNEL)
    other_token = registry.link(OTHER_CHANNEL)

    assert registry.find_link(token).channel_id == CHANNEL
    assert registry.find_link(other_token).channel_id == OTHER_CHANNEL


def test_token_stored_only_as_hash(registry: LinkRegistry, store: ObjectStore) -> None:
    tokens = [registry.link(CHANNEL), registry.link(CHANNEL), registry.link("333")]

    keys = store.list_keys("")
    assert keys
    for token in tokens:
        for key in keys:
            assert token not in key
            assert token.encode() not in store.get(key).body


def test_malformed_token_index(registry: LinkRegistry, store: ObjectStore) -> None:
    token = "token-with-bad-index"
    key = TOKEN_PREFIX + hash_token(token)

    for body in [b"not json", b"[1, 2]", b'{"other": 1}', b"\xff\xfe", b"null"]:
        store.put(key, body)
        assert registry.find_link(token) is None


def test_malformed_channel_record(registry: LinkRegistry, store: ObjectStore) -> None:
    token = registry.link(CHANNEL)
    key = CHANNEL_PREFIX + CHANNEL
    bodies = [
        b"not json",
        b"[]",
        b'{"channelId": "111111111"}',
        b'{"channelId": "111111111", "tokenHash": "x", "linkedAt": "soon"}',
        b'{"channelId": "111111111", "tokenHash": "x", "linkedAt": null}',
        b"\xff",
    ]

    for body in bodies:
        store.put(key, body)
        assert registry.find_link(token) is None
        assert registry.get_link(CHANNEL) is None
        assert registry.list_links() == []


def test_link_over_malformed_record(registry: LinkRegistry, store: ObjectStore) -> None:
    store.put(CHANNEL_PREFIX + CHANNEL, b"not json")

    token = registry.link(CHANNEL)

    assert registry.find_link(token).channel_id == CHANNEL


def test_concurrent_links_different_channels(
    registry: LinkRegistry, store: ObjectStore
) -> None:
    channels = [str(100_000 + index) for index in range(CONCURRENT_CHANNELS)]

    tokens = run_concurrently(registry.link, channels)

    assert len(set(tokens)) == CONCURRENT_CHANNELS
    for channel, token in zip(channels, tokens, strict=True):
        link = registry.find_link(token)
        assert link is not None
        assert link.channel_id == channel
    assert len(registry.list_links()) == CONCURRENT_CHANNELS
    assert len(store.list_keys(TOKEN_PREFIX)) == CONCURRENT_CHANNELS


def test_concurrent_links_same_channel(
    registry: LinkRegistry, store: ObjectStore
) -> None:
    registry.link(CHANNEL)

    tokens = run_concurrently(
        lambda _: registry.link(CHANNEL), list(range(CONCURRENT_RELINKS))
    )

    valid = [token for token in tokens if registry.find_link(token) is not None]
    assert len(set(tokens)) == CONCURRENT_RELINKS
    assert len(valid) == 1
    assert registry.get_link(CHANNEL).token_hash == hash_token(valid[0])
    assert store.list_keys(CHANNEL_PREFIX) == [CHANNEL_PREFIX + CHANNEL]


def test_list_links_oldest_first(registry: LinkRegistry) -> None:
    registry.link("300", username="third")
    registry.link("100", username="first")
    registry.link("200", username="second")
    registry.link("300", username="fourth")

    links = registry.list_links()

    assert [link.channel_id for link in links] == ["100", "200", "300"]
    assert [link.username for link in links] == ["first", "second", "fourth"]


def test_erase_all(registry: LinkRegistry, store: ObjectStore) -> None:
    tokens = [registry.link("100"), registry.link("200"), registry.link("200")]
    store.put("mappings/current.json", b"{}")

    erased = registry.erase_all()

    assert erased == 2
    assert registry.list_links() == []
    assert store.list_keys("links/") == []
    for token in tokens:
        assert registry.find_link(token) is None
    assert store.get("mappings/current.json").body == b"{}"


def test_erase_all_empty(registry: LinkRegistry) -> None:
    assert registry.erase_all() == 0


def test_describe_link_hides_hash(registry: LinkRegistry) -> None:
    registry.link(CHANNEL, username="melinoe")
    link = registry.get_link(CHANNEL)

    text = describe_link(link)

    assert link.token_hash not in text
    assert CHANNEL in text
    assert "2023-11-14 22:13:21 UTC" in text


def test_cached_find_valid_token(registry: LinkRegistry) -> None:
    token = registry.link(CHANNEL, username="melinoe")

    first = registry.find_link_cached(token)
    second = registry.find_link_cached(token)

    assert first is not None
    assert first.channel_id == CHANNEL
    assert second == first


def test_cached_find_unknown_not_cached(registry: LinkRegistry) -> None:
    token = "token-imported-later"
    assert registry.find_link_cached(token) is None

    registry.link(CHANNEL, token=token)

    assert registry.find_link_cached(token).channel_id == CHANNEL
