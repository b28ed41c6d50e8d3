"""Per-thread SQLite connections for the local files worker processes share."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path


class ThreadConnections:
    """Opens one autocommit connection per process and thread, on first use.

    sqlite3 connections must not cross fork() and are meant for one thread,
    so each (process, thread) pair gets its own. Transactions are exactly the
    explicit ``BEGIN ... COMMIT`` blocks. ``synchronous`` is the PRAGMA value:
    NORMAL can lose the last commits in a power cut, OFF also risks them on an
    operating-system crash. ``prepare`` runs on each new connection, e.g. to
    create tables.
    """

    def __init__(
        self,
        path: str | Path,
        busy_timeout_seconds: float,
        synchronous: str = "NORMAL",
        prepare: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.busy_timeout_seconds = busy_timeout_seconds
        self.synchronous = synchronous
        self.prepare = prepare
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            return connection
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_seconds,
            isolation_level=None,
            check_same_thread=False,
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={self.synchronous}")
        if self.prepare is not None:
            self.prepare(connection)
        self._local.connection = connection
        self._local.pid = os.getpid()
        return connection
