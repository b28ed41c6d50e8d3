"""DeliveryService pacing and retries, with an in-memory pubsub and store."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from argus.broadcast.delivery import ChannelSender
from argus.broadcast.delivery import DeliveryPolicy
from argus.broadcast.delivery import DeliveryService
from argus.broadcast.framing import join_parts
from argus.broadcast.outbox import Outbox
from argus.broadcast.outbox import OutboxEntry
from argus.runs import RunArchive
from argus.runs import RunRecord
from argus.store.sqlite import SQLiteStore
from argus.twitch.pubsub import PubsubAnswer
from argus.twitch.pubsub import PubsubError

FAST_POLICY = DeliveryPolicy(
    min_interval=0.05,
    quiet=0.05,
    backoff_initial=0.02,
    backoff_max=0.1,
    idle_release=0.3,
    poll_interval=0.005,
)


class RecordingPubsub:
    """Accepts messages like Twitch, or returns statuses from a scripted list first."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.script: list[int | Exception] = []
        self.lock = threading.Lock()

    def send(self, channel_id: str, message: str) -> PubsubAnswer:
        with self.lock:
            outcome = self.script.pop(0) if self.script else 204
            if isinstance(outcome, Exception):
                raise outcome
            if outcome == 204:
                self.sent.append((channel_id, message))
            return PubsubAnswer(status=outcome, ratelimit_remaining=None)

    def broadcasts(self, channel_id: str) -> list[dict]:
        """Return the complete broadcasts of a channel in arrival order."""
        by_nonce: dict[str, list[str]] = {}
        for channel, message in self.sent:
            if channel == channel_id:
                by_nonce.setdefault(message.split("*")[1], []).append(message)
        runs = []
        for parts in by_nonce.values():
            if len(parts) == int(parts[0].split("*")[3]):
                runs.append(json.loads(join_parts(parts)))
        return runs


@pytest.fixture
def pubsub() -> RecordingPubsub:
    return RecordingPubsub()


@pytest.fixture
def delivery(tmp_path: Path, pubsub: RecordingPubsub):
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    service = DeliveryService(
        outbox,
        pubsub,
        RunArchive(SQLiteStore(tmp_path / "store.sqlite3")),
        lock_path=tmp_path / "delivery.lock",
        part_max_bytes=300,
        dashboard_keep_seconds=60,
        policy=FAST_POLICY,
    )
    service.start()
    yield service
    service.shutdown(timeout=2)


def run_json(number: int, size: int = 500) -> str:
    return json.dumps({"number": number, "padding": "é" * size})


def put(delivery: DeliveryService, channel: str, number: int, size: int = 500) -> None:
    delivery.outbox.put(channel, run_json(number, size), json.dumps({}))
    delivery.notify()


def wait_until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_state_is_broadcast_in_parts(delivery, pubsub):
    put(delivery, "1", 1)

    assert wait_until(lambda: pubsub.broadcasts("1"))
    assert pubsub.broadcasts("1")[-1]["number"] == 1
    assert len(pubsub.sent) > 1
    assert all(len(message.encode()) <= 300 for _, message in pubsub.sent)


def test_burst_ends_with_newest_state(delivery, pubsub):
    for number in range(30):
        put(delivery, "2", number)
        time.sleep(0.005)

    assert wait_until(lambda: pubsub.broadcasts("2")[-1:] == [json.loads(run_json(29))])
    assert len(pubsub.broadcasts("2")) < 30


def test_identical_state_is_skipped(delivery, pubsub):
    put(delivery, "3", 7)
    assert wait_until(lambda: len(pubsub.broadcasts("3")) == 1)
    sent = len(pubsub.sent)

    put(delivery, "3", 7)
    assert wait_until(lambda: delivery.outbox.count() == 0)

    assert len(pubsub.sent) == sent


def test_server_error_retries_whole_broadcast(delivery, pubsub):
    pubsub.script = [204, 503, PubsubError("timed out")]
    put(delivery, "4", 1)

    assert wait_until(lambda: pubsub.broadcasts("4"))
    nonces = {message.split("*")[1] for _, message in pubsub.sent}
    assert len(nonces) == 2
    assert pubsub.broadcasts("4") == [json.loads(run_json(1))]


def test_rejected_state_is_dropped(delivery, pubsub):
    pubsub.script = [422]
    put(delivery, "5", 1)
    assert wait_until(lambda: delivery.outbox.count() == 0)

    put(delivery, "5", 2)

    assert wait_until(lambda: pubsub.broadcasts("5"))
    assert pubsub.broadcasts("5") == [json.loads(run_json(2))]


def test_idle_sender_is_released(delivery, pubsub):
    put(delivery, "6", 1)
    assert wait_until(lambda: pubsub.broadcasts("6"))

    assert wait_until(lambda: "6" not in delivery._channels, timeout=3)


def test_channels_do_not_wait_for_each_other(delivery, pubsub):
    pubsub.script = [503] * 3
    for channel in ("7", "8", "9"):
        put(delivery, channel, 1)

    for channel in ("7", "8", "9"):
        assert wait_until(lambda channel=channel: pubsub.broadcasts(channel))


def test_shutdown_drains_pending_states(tmp_path, pubsub):
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    service = DeliveryService(
        outbox,
        pubsub,
        RunArchive(SQLiteStore(tmp_path / "store.sqlite3")),
        lock_path=tmp_path / "delivery.lock",
        part_max_bytes=300,
        dashboard_keep_seconds=60,
        policy=FAST_POLICY,
    )
    service.start()
    assert wait_until(lambda: service.is_leader)
    for channel in range(5):
        outbox.put(str(channel), run_json(channel), "{}")

    remaining = service.shutdown(timeout=5)

    assert remaining == 0
    for channel in range(5):
        assert pubsub.broadcasts(str(channel)) == [json.loads(run_json(channel))]


def entry(seq: int = 1, size: int = 500) -> OutboxEntry:
    return OutboxEntry(seq, "10", run_json(seq, size), "{}", time.time())


def scheduling_service(tmp_path: Path) -> DeliveryService:
    return DeliveryService(
        Outbox(tmp_path / "outbox.sqlite3"),
        RecordingPubsub(),
        RunArchive(SQLiteStore(tmp_path / "store.sqlite3")),
        lock_path=tmp_path / "delivery.lock",
        part_max_bytes=300,
        dashboard_keep_seconds=60,
    )


def test_start_waits_for_enough_tokens(tmp_path):
    service = scheduling_service(tmp_path)
    sender = ChannelSender("10", tokens=1.0, tokens_at=100.0, seen_seq_at=0.0)
    pending = entry()
    parts = len(service._parts(sender, pending))

    start = service._start_time(sender, pending, now=100.0)

    assert parts > 2
    assert start == pytest.approx(100.0 + parts - 1)


def test_start_paces_busy_channel_below_half(tmp_path):
    service = scheduling_service(tmp_path)
    sender = ChannelSender(
        "10", tokens=30.0, tokens_at=100.0, last_broadcast_at=99.5, seen_seq_at=100.0
    )
    pending = entry()
    parts = len(service._parts(sender, pending))

    start = service._start_time(sender, pending, now=100.0)

    assert start == pytest.approx(min(99.5 + parts, 100.0 + 0.5))
    assert start > 100.0


def test_start_spends_reserve_on_settled_state(tmp_path):
    service = scheduling_service(tmp_path)
    sender = ChannelSender(
        "10", tokens=30.0, tokens_at=100.0, last_broadcast_at=98.0, seen_seq_at=99.0
    )

    start = service._start_time(sender, entry(), now=100.0)

    assert start <= 100.0


def test_start_keeps_minimum_interval(tmp_path):
    service = scheduling_service(tmp_path)
    sender = ChannelSender(
        "10", tokens=100.0, tokens_at=100.0, last_broadcast_at=99.8, seen_seq_at=0.0
    )

    start = service._start_time(sender, entry(), now=100.0)

    assert start == pytest.approx(100.8)


def test_viewer_reads_are_cached_briefly(tmp_path):
    store = SQLiteStore(tmp_path / "store.sqlite3")
    now = [100.0]
    archive = RunArchive(store, clock=lambda: now[0])
    writer = RunArchive(store)
    writer.save(RunRecord("20", run_json(1), {}, time.time()))

    first = archive.load_for_viewers("20")
    writer.save(RunRecord("20", run_json(2), {}, time.time()))
    cached = archive.load_for_viewers("20")
    now[0] += 1.5
    fresh = archive.load_for_viewers("20")

    assert json.loads(first.run_json)["number"] == 1
    assert json.loads(cached.run_json)["number"] == 1
    assert json.loads(fresh.run_json)["number"] == 2


def test_viewer_cache_sees_own_saves(tmp_path):
    archive = RunArchive(SQLiteStore(tmp_path / "store.sqlite3"))
    assert archive.load_for_viewers("21") is None

    archive.save(RunRecord("21", run_json(3), {}, time.time()))

    assert json.loads(archive.load_for_viewers("21").run_json)["number"] == 3
