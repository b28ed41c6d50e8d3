"""The embedded object store: one SQLite table, safe across threads and processes."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from argus.sqlite_connections import ThreadConnections
from argus.store.base import PreconditionFailed
from argus.store.base import StoredObject
from argus.store.base import StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    version TEXT NOT NULL
)
"""


class SQLiteStore:
    """Objects in a SQLite file, with the conditional writes S3 offers.

    Each thread gets its own connection. Conditional writes run inside
    ``BEGIN IMMEDIATE`` so the check and the write are one atomic step even
    when several worker processes share the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._connections = ThreadConnections(
            self.path,
            busy_timeout_seconds=10.0,
            prepare=lambda connection: connection.execute(_SCHEMA),
        )
        self._connection()

    def _connection(self) -> sqlite3.Connection:
        return self._connections.get()

    def get(self, key: str) -> StoredObject | None:
        try:
            row = (
                self._connection()
                .execute("SELECT body, version FROM objects WHERE key = ?", (key,))
                .fetchone()
            )
        except sqlite3.Error as error:
            raise StoreError(f"SQLite read of {key!r} failed: {error}") from error
        if row is None:
            return None
        body = row[0]
        # Rows written by other tools may hold TEXT instead of a BLOB.
        if isinstance(body, str):
            body = body.encode()
        return StoredObject(bytes(body), str(row[1]))

    def put(
        self,
        key: str,
        body: bytes,
        *,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> str:
        version = uuid.uuid4().hex
        connection = self._connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                self._check_precondition(connection, key, if_absent, if_version)
                connection.execute(
                    "INSERT INTO objects (key, body, version) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET "
                    "body = excluded.body, version = excluded.version",
                    (key, body, version),
                )
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            raise StoreError(f"SQLite write of {key!r} failed: {error}") from error
        return version

    def delete(self, key: str, *, if_version: str | None = None) -> None:
        connection = self._connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                self._check_precondition(connection, key, False, if_version)
                connection.execute("DELETE FROM objects WHERE key = ?", (key,))
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            raise StoreError(f"SQLite delete of {key!r} failed: {error}") from error

    @staticmethod
    def _check_precondition(
        connection: sqlite3.Connection,
        key: str,
        if_absent: bool,
        if_version: str | None,
    ) -> None:
        if not if_absent and if_version is None:
            return
        row = connection.execute(
            "SELECT version FROM objects WHERE key = ?", (key,)
        ).fetchone()
        if if_absent and row is not None:
            raise PreconditionFailed(f"{key!r} already exists")
        if if_version is not None and (row is None or row[0] != if_version):
            raise PreconditionFailed(f"{key!r} changed since version {if_version}")

    def list_keys(self, prefix: str) -> list[str]:
        # Range scan instead of LIKE, so that % and _ in a prefix match literally.
        upper = _prefix_upper_bound(prefix)
        if upper is None:
            query, parameters = "SELECT key FROM objects WHERE key >= ?", (prefix,)
        else:
            query = "SELECT key FROM objects WHERE key >= ? AND key < ?"
            parameters = (prefix, upper)
        try:
            rows = (
                self._connection()
                .execute(query + " ORDER BY key", parameters)
                .fetchall()
            )
        except sqlite3.Error as error:
            raise StoreError(f"SQLite listing of {prefix!r} failed: {error}") from error
        return [row[0] for row in rows]

    def check(self) -> None:
        try:
            self._connection().execute("SELECT 1 FROM objects LIMIT 1").fetchall()
        except sqlite3.Error as error:
            raise StoreError(
                f"SQLite store {self.path} is unusable: {error}"
            ) from error

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"


def _prefix_upper_bound(prefix: str) -> str | None:
    """Return the least string above every string that starts with ``prefix``.

    SQLite's BINARY collation compares UTF-8 bytes, which orders text by code
    point. The bound is the prefix up to its last code point below U+10FFFF,
    with that code point incremented. None means that no bound exists, as for
    an empty prefix.
    """
    characters = list(prefix)
    while characters:
        code_point = ord(characters.pop()) + 1
        if code_point == 0xD800:
            # Surrogates cannot be stored as UTF-8, so U+E000 follows U+D7FF.
            code_point = 0xE000
        if code_point <= 0x10FFFF:
            return "".join(characters) + chr(code_point)
    return None
