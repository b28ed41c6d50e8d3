"""Tests of the SQLite outbox of undelivered run states."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from argus.broadcast.outbox import Outbox

PROFILE = '{"username": "melinoe"}'
THREADS = 8
PUTS_PER_THREAD = 50
PROCESSES = 4
PUTS_PER_PROCESS = 40


@pytest.fixture
def outbox_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "outbox.sqlite3"


@pytest.fixture
def outbox(outbox_path: Path) -> Outbox:
    return Outbox(outbox_path)


def put_states_in_process(path: str, channel_id: str, count: int) -> None:
    outbox = Outbox(path)
    for index in range(count):
        outbox.put(channel_id, f'{{"room": {index}}}', PROFILE)


def test_put_then_pending(outbox: Outbox) -> None:
    result = outbox.put("100", '{"room": 1}', PROFILE)

    entries = outbox.pending()
    assert result.coalesced is False
    assert result.dropped_channels == ()
    assert len(entries) == 1
    assert entries[0].channel_id == "100"
    assert entries[0].run_json == '{"room": 1}'
    assert entries[0].profile_json == PROFILE
    assert entries[0].received_at > 0
    assert outbox.count() == 1


def test_put_keeps_newest_state(outbox: Outbox) -> None:
    outbox.put("100", '{"room": 1}', PROFILE)

    result = outbox.put("100", '{"room": 2}', '{"username": "new"}')

    entries = outbox.pending()
    assert result.coalesced is True
    assert result.dropped_channels == ()
    assert [entry.run_json for entry in entries] == ['{"room": 2}']
    assert entries[0].profile_json == '{"username": "new"}'


def test_pending_in_seq_order(outbox: Outbox) -> None:
    outbox.put("100", '{"room": 1}', PROFILE)
    outbox.put("200", '{"room": 1}', PROFILE)
    outbox.put("300", '{"room": 1}', PROFILE)
    outbox.put("100", '{"room": 2}', PROFILE)

    entries = outbox.pending()

    assert [entry.channel_id for entry in entries] == ["200", "300", "100"]
    seqs = [entry.seq for entry in entries]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 3


def test_replaced_state_new_seq(outbox: Outbox) -> None:
    outbox.put("100", '{"room": 1}', PROFILE)
    first = outbox.pending()[0]

    outbox.put("100", '{"room": 2}', PROFILE)

    assert outbox.pending()[0].seq > first.seq


def test_bound_drops_oldest(outbox_path: Path) -> None:
    outbox = Outbox(outbox_path, max_channels=3)
    for channel in ["100", "200", "300"]:
        assert outbox.put(channel, "{}", PROFILE).dropped_channels == ()

    result = outbox.put("400", '{"room": 4}', PROFILE)

    assert result.dropped_channels == ("100",)
    assert result.coalesced is False
    assert [entry.channel_id for entry in outbox.pending()] == ["200", "300", "400"]
    assert outbox.count() == 3


def test_bound_keeps_refreshed_channel(outbox_path: Path) -> None:
    outbox = Outbox(outbox_path, max_channels=3)
    for channel in ["100", "200", "300"]:
        outbox.put(channel, "{}", PROFILE)

    refreshed = outbox.put("100", '{"room": 2}', PROFILE)
    result = outbox.put("400", "{}", PROFILE)

    assert refreshed.dropped_channels == ()
    assert refreshed.coalesced is True
    assert result.dropped_channels == ("200",)
    assert [entry.channel_id for entry in outbox.pending()] == ["300", "100", "400"]


def test_bound_of_one_keeps_newest(outbox_path: Path) -> None:
    outbox = Outbox(outbox_path, max_channels=1)
    outbox.put("100", "{}", PROFILE)

    result = outbox.put("200", '{"room": 2}', PROFILE)

    assert result.dropped_channels == ("100",)
    assert [entry.run_json for entry in outbox.pending()] == ['{"room": 2}']


def test_bound_shrunk_on_reopen(outbox_path: Path) -> None:
    wide = Outbox(outbox_path, max_channels=10)
    for channel in ["100", "200", "300", "400"]:
        wide.put(channel, "{}", PROFILE)
    narrow = Outbox(outbox_path, max_channels=2)

    result = narrow.put("500", "{}", PROFILE)

    assert result.dropped_channels == ("100", "200", "300")
    assert [entry.channel_id for entry in narrow.pending()] == ["400", "500"]


@pytest.mark.parametrize("max_channels", [0, -1])
def test_bound_below_one_rejected(outbox_path: Path, max_channels: int) -> None:
    with pytest.raises(ValueError):
        Outbox(outbox_path, max_channels=max_channels)


def test_remove_delivered(outbox: Outbox) -> None:
    outbox.put("100", "{}", PROFILE)
    outbox.put("200", "{}", PROFILE)
    entry = outbox.pending()[0]

    removed = outbox.remove(entry)

    assert removed is True
    assert [entry.channel_id for entry in outbox.pending()] == ["200"]


def test_remove_replaced_is_noop(outbox: Outbox) -> None:
    outbox.put("100", '{"room": 1}', PROFILE)
    delivered = outbox.pending()[0]
    outbox.put("100", '{"room": 2}', PROFILE)

    removed = outbox.remove(delivered)

    assert removed is False
    assert [entry.run_json for entry in outbox.pending()] == ['{"room": 2}']


def test_remove_twice(outbox: Outbox) -> None:
    outbox.put("100", "{}", PROFILE)
    entry = outbox.pending()[0]

    assert outbox.remove(entry) is True
    assert outbox.remove(entry) is False
    assert outbox.count() == 0


def test_survives_reopen(outbox_path: Path) -> None:
    Outbox(outbox_path).put("100", '{"room": 1}', PROFILE)

    reopened = Outbox(outbox_path)

    assert [entry.run_json for entry in reopened.pending()] == ['{"room": 1}']


def test_seq_grows_after_reopen(outbox_path: Path) -> None:
    first = Outbox(outbox_path)
    first.put("100", "{}", PROFILE)
    old_seq = first.pending()[0].seq
    first.remove(first.pending()[0])

    reopened = Outbox(outbox_path)
    reopened.put("100", "{}", PROFILE)

    assert reopened.pending()[0].seq > old_seq


def test_unicode_state_round_trip(outbox: Outbox) -> None:
    run_json = '{"boon": "Mélinoë 日本 😀"}'

    outbox.put("100", run_json, PROFILE)

    assert outbox.pending()[0].run_json == run_json


def test_threads_keep_newest(outbox: Outbox) -> None:
    start = threading.Barrier(THREADS)

    def put_states(thread: int) -> None:
        start.wait()
        for index in range(PUTS_PER_THREAD):
            outbox.put(str(thread), f'{{"room": {index}}}', PROFILE)

    with ThreadPoolExecutor(THREADS) as executor:
        futures = [executor.submit(put_states, thread) for thread in range(THREADS)]
        for future in futures:
            future.result()

    entries = outbox.pending()
    assert sorted(entry.channel_id for entry in entries) == [
        str(thread) for thread in range(THREADS)
    ]
    for entry in entries:
        assert entry.run_json == f'{{"room": {PUTS_PER_THREAD - 1}}}'


def test_processes_share_outbox(outbox_path: Path) -> None:
    Outbox(outbox_path)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=put_states_in_process,
            args=(str(outbox_path), str(index), PUTS_PER_PROCESS),
        )
        for index in range(PROCESSES)
    ]

    for process in processes:
        process.start()
    for process in processes:
        process.join(60)

    assert [process.exitcode for process in processes] == [0] * PROCESSES
    entries = Outbox(outbox_path).pending()
    assert sorted(entry.channel_id for entry in entries) == [
        str(index) for index in range(PROCESSES)
    ]
    for entry in entries:
        assert entry.run_json == f'{{"room": {PUTS_PER_PROCESS - 1}}}'


def test_put_many_one_batch(outbox: Outbox) -> None:
    outbox.put("100", '{"room": 0}', PROFILE)
    states = [
        ("100", '{"room": 1}', PROFILE, 1_700_000_001.0),
        ("200", '{"room": 1}', PROFILE, 1_700_000_002.0),
        ("200", '{"room": 2}', PROFILE, 1_700_000_003.0),
    ]

    result = outbox.put_many(states)

    entries = outbox.pending()
    assert result.coalesced == 2
    assert result.dropped_channels == ()
    assert [entry.channel_id for entry in entries] == ["100", "200"]
    assert [entry.run_json for entry in entries] == ['{"room": 1}', '{"room": 2}']
    assert [entry.received_at for entry in entries] == [
        1_700_000_001.0,
        1_700_000_003.0,
    ]


def test_put_many_over_bound(outbox_path: Path) -> None:
    outbox = Outbox(outbox_path, max_channels=2)
    states = [(str(channel), "{}", PROFILE, 1.0) for channel in range(5)]

    result = outbox.put_many(states)

    assert result.dropped_channels == ("0", "1", "2")
    assert [entry.channel_id for entry in outbox.pending()] == ["3", "4"]


def test_put_many_atomic(outbox: Outbox) -> None:
    outbox.put("100", '{"room": 0}', PROFILE)
    states = [
        ("100", '{"room": 1}', PROFILE, 1.0),
        ("200", None, PROFILE, 1.0),
    ]

    with pytest.raises(sqlite3.IntegrityError):
        outbox.put_many(states)

    assert [entry.run_json for entry in outbox.pending()] == ['{"room": 0}']
    outbox.put("300", "{}", PROFILE)
    assert outbox.count() == 2


def test_put_many_empty(outbox: Outbox) -> None:
    result = outbox.put_many([])

    assert result.coalesced == 0
    assert result.dropped_channels == ()
    assert outbox.count() == 0
