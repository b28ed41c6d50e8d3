"""In-process coalescing of run states before they reach the shared outbox.

A request hands its state to the buffer and returns at once. Every few
milliseconds a background thread writes each channel's newest state to the
outbox in one transaction. So a flood of updates costs one SQLite write per
channel and flush instead of one per request, and request threads never queue
behind the outbox's write lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from argus import metrics
from argus.broadcast.outbox import Outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BufferedState:
    """A state waiting in the buffer, with the time it arrived (Unix seconds)."""

    run_json: str
    profile_json: str
    received_at: float


class OutboxBuffer:
    """Holds the newest state of each channel until the next flush.

    NOTE: states accepted less than ``flush_delay`` ago are lost if the process
    is killed without a graceful stop; a graceful stop flushes them.
    """

    def __init__(
        self,
        outbox: Outbox,
        on_flush: Callable[[], None],
        flush_delay: float = 0.005,
    ) -> None:
        self.outbox = outbox
        self.on_flush = on_flush
        self.flush_delay = flush_delay
        self._pending: dict[str, BufferedState] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, channel_id: str, state: BufferedState) -> None:
        """Queue a channel's newest state, replacing one still in the buffer."""
        with self._lock:
            if channel_id in self._pending:
                metrics.COALESCED.inc()
            self._pending[channel_id] = state
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name="argus-outbox", daemon=True
                )
                self._thread.start()
            closed = self._closed
        if closed:
            self.flush()
        else:
            self._wake.set()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            # A short pause gathers the states of concurrent requests into one
            # transaction.
            threading.Event().wait(self.flush_delay)
            try:
                self.flush()
            except Exception:
                # The states stay in the buffer and go with the next flush.
                log.exception("writing states to the outbox failed")
                threading.Event().wait(0.5)
                self._wake.set()

    def flush(self) -> int:
        """Write every buffered state to the outbox; return how many went."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
            if not batch:
                return 0
            try:
                result = self.outbox.put_many(
                    [
                        (channel, state.run_json, state.profile_json, state.received_at)
                        for channel, state in batch.items()
                    ]
                )
            except Exception:
                with self._lock:
                    # Newer states that arrived meanwhile win over the batch.
                    self._pending = {**batch, **self._pending}
                raise
        if result.coalesced:
            metrics.COALESCED.inc(result.coalesced)
        for channel_id in result.dropped_channels:
            metrics.BROADCASTS.labels("dropped").inc()
            log.warning(
                "outbox full: dropped the pending state of channel %s", channel_id
            )
        self.on_flush()
        return len(batch)

    def close(self) -> None:
        """Flush what is buffered; later submissions are written at once."""
        with self._lock:
            self._closed = True
        self._wake.set()
        self.flush()
