"""Per-channel delivery of run states to Twitch pubsub, paced under its rate limit.

One process of the service holds an exclusive lock on a file in the state
directory and is the only sender. The other worker processes only write states
into the shared outbox. For each channel the sender keeps an estimate of
Twitch's token bucket: 100 points, one more per second, one point per message.
The ``Ratelimit-Remaining`` header of every response resynchronises it.

Pacing: a broadcast waits until the bucket contains a point for each of its
parts and at least ``min_interval`` passed since the channel's last broadcast.
While the bucket is below half full, it also waits ``parts / refill rate``
seconds, the pace the bucket can sustain. The exception is a state that has not
changed for ``quiet`` seconds: it is most likely the last state of a burst, so
the reserve pays for it. A flood of updates therefore keeps the bucket about
half full, and the state a client sent last still goes out within about a
second.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from argus import metrics
from argus.broadcast.framing import frame_message
from argus.broadcast.outbox import Outbox
from argus.broadcast.outbox import OutboxEntry
from argus.runs import RunArchive
from argus.runs import RunRecord
from argus.store import StoreError
from argus.twitch.pubsub import PubsubAnswer
from argus.twitch.pubsub import PubsubClient
from argus.twitch.pubsub import PubsubError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    """Pacing and retry settings; the bucket figures are Twitch's."""

    bucket_capacity: float = 100.0
    refill_per_second: float = 1.0
    min_interval: float = 1.0
    quiet: float = 0.5
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    # Twitch's bucket is full again 100 s after the last message, so a sender
    # idle for longer has nothing worth keeping.
    idle_release: float = 120.0
    # The same state is written to the store again after this long, so the
    # dashboard keeps listing a streamer whose run is unchanged.
    refresh_unchanged: float = 60.0
    poll_interval: float = 0.02
    max_threads: int = 16


@dataclass
class ChannelSender:
    """Delivery state of one channel, touched only by the delivering process."""

    channel_id: str
    tokens: float
    tokens_at: float
    busy: bool = False
    last_broadcast_at: float = float("-inf")
    delivered_digest: str | None = None
    saved_digest: str | None = None
    saved_at: float = float("-inf")
    seen_seq: int = -1
    seen_seq_at: float = 0.0
    failures: int = 0
    retry_at: float = 0.0
    last_activity: float = 0.0
    parts_cache: dict[int, list[str]] = field(default_factory=dict)
    digest_cache: tuple[int, str] = (-1, "")

    def digest(self, entry: OutboxEntry) -> str:
        """Return the SHA-256 of the entry's run, computed once per entry."""
        if self.digest_cache[0] != entry.seq:
            self.digest_cache = (entry.seq, digest_of(entry.run_json))
        return self.digest_cache[1]

    def refill(self, now: float, policy: DeliveryPolicy) -> None:
        elapsed = max(0.0, now - self.tokens_at)
        self.tokens = min(
            policy.bucket_capacity, self.tokens + elapsed * policy.refill_per_second
        )
        self.tokens_at = now


def digest_of(run_json: str) -> str:
    return hashlib.sha256(run_json.encode()).hexdigest()


class DeliveryService:
    """Sends outbox states to Twitch from the process that holds the lock."""

    def __init__(
        self,
        outbox: Outbox,
        pubsub: PubsubClient,
        archive: RunArchive,
        lock_path: Path,
        part_max_bytes: int,
        dashboard_keep_seconds: float,
        policy: DeliveryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outbox = outbox
        self.pubsub = pubsub
        self.archive = archive
        self.lock_path = lock_path
        self.part_max_bytes = part_max_bytes
        self.policy = policy or DeliveryPolicy()
        self.clock = clock
        self.dashboard = DashboardWriter(archive, dashboard_keep_seconds)
        self._channels: dict[str, ChannelSender] = {}
        self._channels_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock_file: int | None = None
        self._doorbell = Doorbell(lock_path)
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(
            max_workers=self.policy.max_threads, thread_name_prefix="argus-send"
        )

    # Life cycle

    def start(self) -> None:
        """Start the delivery thread; it sends only while it holds the lock."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name="argus-delivery", daemon=True
        )
        self._thread.start()

    def notify(self) -> None:
        """Wake the sending process after a new state reached the outbox."""
        self._wake.set()
        if not self.is_leader:
            self._doorbell.ring()

    @property
    def is_leader(self) -> bool:
        return self._lock_file is not None

    def shutdown(self, timeout: float = 20.0) -> int:
        """Deliver what is pending (when this process sends), then stop.

        Returns the number of states still pending when the time ran out.
        """
        deadline = time.monotonic() + timeout
        # The sending process may have stopped before this one wrote its last
        # states; then this one takes over to send them.
        takeover_deadline = min(deadline, time.monotonic() + 5.0)
        while not self.is_leader and time.monotonic() < takeover_deadline:
            if not self.outbox.count() or self._try_lock():
                break
            time.sleep(0.1)
        if self.is_leader:
            log.info("delivery draining %d pending states", self.outbox.count())
            quiet_since = time.monotonic()
            while time.monotonic() < deadline:
                if self.outbox.count() or self._any_busy():
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > 0.5:
                    break
                self._wake.set()
                time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(max(0.1, deadline - time.monotonic()))
        self._pool.shutdown(wait=True, cancel_futures=False)
        remaining = self.outbox.count() if self.is_leader else 0
        self._release_lock()
        if remaining:
            log.warning("delivery stopped with %d states pending", remaining)
        else:
            log.info("delivery stopped")
        return remaining

    def _any_busy(self) -> bool:
        with self._channels_lock:
            return any(sender.busy for sender in self._channels.values())

    def _try_lock(self) -> bool:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            return False
        self._lock_file = descriptor
        self._doorbell.listen(self._wake)
        log.info("delivery started in process %d", os.getpid())
        return True

    def _release_lock(self) -> None:
        self._doorbell.close()
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    # Scheduling

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.is_leader and not self._try_lock():
                self._stop.wait(1.0)
                continue
            try:
                wait = self._schedule()
                self.dashboard.flush_if_due(time.time())
            except Exception:
                # The loop must outlive any single failure; the next round
                # reads the outbox again.
                log.exception("delivery round failed")
                wait = 1.0
            self._wake.wait(wait)
            self._wake.clear()

    def _schedule(self) -> float:
        """Start the deliveries that may go now; return seconds until the next."""
        now = self.clock()
        entries = self.outbox.pending()
        metrics.PENDING_STATES.set(len(entries))
        wait = self.policy.poll_interval * 25
        if entries:
            wait = self.policy.poll_interval
        pending_channels = set()
        for entry in entries:
            pending_channels.add(entry.channel_id)
            sender = self._sender(entry.channel_id, now)
            if sender.busy:
                continue
            if entry.seq != sender.seen_seq:
                sender.seen_seq = entry.seq
                sender.seen_seq_at = now
            start_at = self._start_time(sender, entry, now)
            if start_at <= now:
                sender.busy = True
                self._pool.submit(self._deliver, sender, entry)
            else:
                wait = min(wait, start_at - now)
        self._release_idle(pending_channels, now)
        return max(wait, 0.001)

    def _sender(self, channel_id: str, now: float) -> ChannelSender:
        with self._channels_lock:
            sender = self._channels.get(channel_id)
            if sender is None:
                sender = ChannelSender(
                    channel_id, tokens=self.policy.bucket_capacity, tokens_at=now
                )
                self._channels[channel_id] = sender
            sender.last_activity = now
            return sender

    def _release_idle(self, pending_channels: set[str], now: float) -> None:
        with self._channels_lock:
            idle = [
                channel_id
                for channel_id, sender in self._channels.items()
                if not sender.busy
                and channel_id not in pending_channels
                and now - sender.last_activity > self.policy.idle_release
            ]
            for channel_id in idle:
                del self._channels[channel_id]

    def _parts(self, sender: ChannelSender, entry: OutboxEntry) -> list[str]:
        parts = sender.parts_cache.get(entry.seq)
        if parts is None:
            parts = frame_message(entry.run_json, self.part_max_bytes)
            sender.parts_cache = {entry.seq: parts}
        return parts

    def _start_time(
        self, sender: ChannelSender, entry: OutboxEntry, now: float
    ) -> float:
        """Return when the entry's delivery may start (at or before ``now``: go)."""
        policy = self.policy
        if sender.digest(entry) == sender.delivered_digest:
            return now
        if sender.retry_at > now:
            return sender.retry_at

        sender.refill(now, policy)
        parts = len(self._parts(sender, entry))
        start = sender.last_broadcast_at + policy.min_interval
        if sender.tokens < parts:
            start = max(start, now + (parts - sender.tokens) / policy.refill_per_second)
        below_half = sender.tokens - parts < policy.bucket_capacity / 2
        settled = now - sender.seen_seq_at >= policy.quiet
        if below_half and not settled:
            sustainable = sender.last_broadcast_at + parts / policy.refill_per_second
            start = max(start, min(sustainable, sender.seen_seq_at + policy.quiet))
        return start

    # Delivery

    def _deliver(self, sender: ChannelSender, entry: OutboxEntry) -> None:
        try:
            self._save_latest(sender, entry)
            if sender.digest(entry) == sender.delivered_digest:
                metrics.SKIPPED.inc()
                self.outbox.remove(entry)
                return
            self._broadcast(sender, entry)
        except Exception:
            log.exception("delivery to channel %s failed", entry.channel_id)
            self._schedule_retry(sender)
        finally:
            sender.busy = False
            self._wake.set()

    def _save_latest(self, sender: ChannelSender, entry: OutboxEntry) -> None:
        digest = sender.digest(entry)
        now = self.clock()
        fresh = now - sender.saved_at < self.policy.refresh_unchanged
        if digest == sender.saved_digest and fresh:
            return
        record = RunRecord(
            channel_id=entry.channel_id,
            run_json=entry.run_json,
            profile=json.loads(entry.profile_json),
            updated_at=entry.received_at,
        )
        try:
            self.archive.save(record)
        except StoreError as error:
            # The broadcast still goes out; the next state saves again.
            metrics.STORE_ERRORS.labels("save_run").inc()
            log.error(
                "saving the run of channel %s failed: %s", entry.channel_id, error
            )
            return
        sender.saved_digest = digest
        sender.saved_at = now
        self.dashboard.add(record)

    def _broadcast(self, sender: ChannelSender, entry: OutboxEntry) -> None:
        parts = self._parts(sender, entry)
        for index, part in enumerate(parts):
            sender.refill(self.clock(), self.policy)
            sender.tokens -= 1
            try:
                answer = self.pubsub.send(entry.channel_id, part)
            except PubsubError as error:
                metrics.TWITCH_ANSWERS.labels("pubsub", "error").inc()
                log.warning(
                    "pubsub part %d/%d to channel %s failed: %s",
                    index + 1,
                    len(parts),
                    entry.channel_id,
                    error,
                )
                self._schedule_retry(sender)
                return
            metrics.TWITCH_ANSWERS.labels("pubsub", str(answer.status)).inc()
            self._resync(sender, answer)
            if not answer.accepted:
                self._handle_rejection(sender, entry, answer, index, len(parts))
                return
            metrics.PARTS.inc()

        sender.last_broadcast_at = self.clock()
        sender.delivered_digest = sender.digest(entry)
        sender.failures = 0
        sender.retry_at = 0.0
        self.outbox.remove(entry)
        metrics.BROADCASTS.labels("delivered").inc()
        metrics.BROADCAST_DELAY_SECONDS.observe(
            max(0.0, time.time() - entry.received_at)
        )
        log.debug("broadcast %d parts to channel %s", len(parts), entry.channel_id)

    def _resync(self, sender: ChannelSender, answer: PubsubAnswer) -> None:
        if answer.ratelimit_remaining is not None:
            sender.tokens = float(answer.ratelimit_remaining)
            sender.tokens_at = self.clock()

    def _handle_rejection(
        self,
        sender: ChannelSender,
        entry: OutboxEntry,
        answer: PubsubAnswer,
        index: int,
        count: int,
    ) -> None:
        if answer.retryable:
            if answer.status == 429:
                sender.tokens = min(sender.tokens, 0.0)
            log.warning(
                "pubsub returned %d for part %d/%d to channel %s, so the whole "
                "broadcast will be retried",
                answer.status,
                index + 1,
                count,
                entry.channel_id,
            )
            self._schedule_retry(sender)
            return
        # 400, 401, 403 and 422 will not change on a retry: the state is
        # dropped and the next one tries again.
        log.error(
            "pubsub rejected part %d/%d to channel %s with %d: %s",
            index + 1,
            count,
            entry.channel_id,
            answer.status,
            answer.message,
        )
        metrics.BROADCASTS.labels("rejected").inc()
        sender.failures = 0
        self.outbox.remove(entry)

    def _schedule_retry(self, sender: ChannelSender) -> None:
        sender.failures += 1
        # A fresh nonce for the retry, so that the extension discards any
        # parts of the failed attempt it already received.
        sender.parts_cache = {}
        delay = min(
            self.policy.backoff_max,
            self.policy.backoff_initial * 2 ** (sender.failures - 1),
        )
        delay *= random.uniform(0.8, 1.2)
        sender.retry_at = self.clock() + delay
        metrics.RETRIES.inc()
        log.info(
            "broadcast to channel %s will be retried in %.1fs (attempt %d)",
            sender.channel_id,
            delay,
            sender.failures + 1,
        )


class Doorbell:
    """Wakes the sending process from other worker processes of the machine.

    The sender listens on a Unix datagram socket in Linux's abstract namespace,
    named after the lock file. Other processes send it one byte after they
    wrote to the outbox. Where the socket is unavailable or a byte is lost, the
    sender still finds the state on its next poll of the outbox.
    """

    def __init__(self, lock_path: Path) -> None:
        digest = hashlib.sha256(str(lock_path.resolve()).encode()).hexdigest()[:24]
        self.address = b"\0argus-delivery-" + digest.encode()
        self._socket: socket.socket | None = None
        self._sender: socket.socket | None = None

    def ring(self) -> None:
        try:
            if self._sender is None:
                self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sender.setblocking(False)
            self._sender.sendto(b"!", self.address)
        except OSError:
            # No listener or a full queue: the sender polls anyway.
            pass

    def listen(self, wake: threading.Event) -> None:
        try:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            listener.bind(self.address)
        except OSError as error:
            log.info("delivery doorbell unavailable, polling only: %s", error)
            return
        self._socket = listener
        threading.Thread(
            target=self._receive,
            args=(listener, wake),
            name="argus-doorbell",
            daemon=True,
        ).start()

    @staticmethod
    def _receive(listener: socket.socket, wake: threading.Event) -> None:
        while True:
            try:
                data = listener.recv(64)
            except OSError:
                return
            if not data:
                return
            wake.set()

    def close(self) -> None:
        if self._socket is not None:
            # shutdown() ends the blocked recv() of the receiving thread.
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._socket.close()
            self._socket = None


class DashboardWriter:
    """Keeps the store's list of recently active runs, written at most every 2 s."""

    def __init__(
        self, archive: RunArchive, keep_seconds: float, interval: float = 2.0
    ) -> None:
        self.archive = archive
        self.keep_seconds = keep_seconds
        self.interval = interval
        self._records: dict[str, RunRecord] | None = None
        self._dirty = False
        self._written_at = 0.0
        self._lock = threading.Lock()

    def add(self, record: RunRecord) -> None:
        with self._lock:
            self._load_once()
            self._records[record.channel_id] = record
            self._dirty = True

    def _load_once(self) -> None:
        if self._records is None:
            self._records = {
                record.channel_id: record for record in self.archive.load_dashboard()
            }

    def flush_if_due(self, now: float) -> None:
        with self._lock:
            if not self._dirty or time.monotonic() - self._written_at < self.interval:
                return
            records = {
                channel_id: record
                for channel_id, record in (self._records or {}).items()
                if now - record.updated_at < self.keep_seconds
            }
            self._records = records
            try:
                self.archive.save_dashboard(list(records.values()))
            except StoreError as error:
                metrics.STORE_ERRORS.labels("save_dashboard").inc()
                log.error("saving the dashboard list failed: %s", error)
                return
            self._dirty = False
            self._written_at = time.monotonic()
