"""The newest undelivered run state of each channel, shared by worker processes.

Every worker process writes the states it receives here, and the one process
that holds the delivery lock sends them. One row per channel keeps only the
newest state, which coalesces bursts by construction, and the file survives a
restart of the service.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from argus.sqlite_connections import ThreadConnections

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id TEXT NOT NULL UNIQUE,
    run_json TEXT NOT NULL,
    profile_json TEXT NOT NULL,
    received_at REAL NOT NULL
)
"""


@dataclass(frozen=True)
class OutboxEntry:
    """A channel's newest run state waiting for delivery."""

    seq: int
    channel_id: str
    run_json: str
    profile_json: str
    received_at: float


@dataclass(frozen=True)
class PutResult:
    """Outcome of storing one state.

    ``coalesced`` is whether it replaced an undelivered state of its channel.
    """

    coalesced: bool
    dropped_channels: tuple[str, ...]


@dataclass(frozen=True)
class BatchResult:
    """Outcome of storing several states.

    ``coalesced`` counts the states that replaced an undelivered one.
    """

    coalesced: int
    dropped_channels: tuple[str, ...]


class Outbox:
    """A SQLite table of pending states, bounded to ``max_channels`` rows."""

    def __init__(self, path: str | Path, max_channels: int = 10_000) -> None:
        # With no room for even one row, put() would drop the state it just wrote.
        if max_channels < 1:
            raise ValueError(f"max_channels must be at least 1, got {max_channels}")
        self.path = Path(path)
        self.max_channels = max_channels
        # Losing the last states in a power cut is acceptable, because the
        # clients send a fresh one on the next room (synchronous=NORMAL).
        self._connections = ThreadConnections(
            self.path,
            busy_timeout_seconds=10.0,
            prepare=lambda connection: connection.execute(_SCHEMA),
        )
        self._connection()

    def _connection(self) -> sqlite3.Connection:
        return self._connections.get()

    def put(self, channel_id: str, run_json: str, profile_json: str) -> PutResult:
        """Store a channel's newest state, replacing its undelivered one."""
        result = self.put_many([(channel_id, run_json, profile_json, time.time())])
        return PutResult(
            coalesced=result.coalesced > 0, dropped_channels=result.dropped_channels
        )

    def put_many(self, states: list[tuple[str, str, str, float]]) -> BatchResult:
        """Store ``(channel_id, run_json, profile_json, received_at)`` states.

        All of them go in one transaction; each replaces the channel's
        undelivered state.
        """
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            replaced = 0
            for channel_id, run_json, profile_json, received_at in states:
                replaced += (
                    connection.execute(
                        "SELECT 1 FROM pending WHERE channel_id = ?", (channel_id,)
                    ).fetchone()
                    is not None
                )
                # REPLACE deletes the old row and inserts a new one, so the new
                # state gets a larger seq than every state before it.
                connection.execute(
                    "INSERT OR REPLACE INTO pending (channel_id, run_json, "
                    "profile_json, received_at) VALUES (?, ?, ?, ?)",
                    (channel_id, run_json, profile_json, received_at),
                )
            dropped = self._enforce_bound(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return BatchResult(coalesced=replaced, dropped_channels=dropped)

    def _enforce_bound(self, connection: sqlite3.Connection) -> tuple[str, ...]:
        (count,) = connection.execute("SELECT COUNT(*) FROM pending").fetchone()
        excess = count - self.max_channels
        if excess <= 0:
            return ()
        # The oldest states go first: the newest one was just written.
        rows = connection.execute(
            "SELECT seq, channel_id FROM pending ORDER BY seq LIMIT ?", (excess,)
        ).fetchall()
        connection.executemany(
            "DELETE FROM pending WHERE seq = ?", [(seq,) for seq, _ in rows]
        )
        return tuple(channel_id for _, channel_id in rows)

    def pending(self) -> list[OutboxEntry]:
        """Return every pending state, oldest first."""
        rows = (
            self._connection()
            .execute(
                "SELECT seq, channel_id, run_json, profile_json, received_at "
                "FROM pending ORDER BY seq"
            )
            .fetchall()
        )
        return [OutboxEntry(*row) for row in rows]

    def remove(self, entry: OutboxEntry) -> bool:
        """Remove a delivered state unless a newer one replaced it meanwhile."""
        cursor = self._connection().execute(
            "DELETE FROM pending WHERE seq = ?", (entry.seq,)
        )
        return cursor.rowcount == 1

    def count(self) -> int:
        (count,) = self._connection().execute("SELECT COUNT(*) FROM pending").fetchone()
        return count
