"""Request rate limits shared by all worker processes of one machine.

Each rule is a token bucket (see ``RateLimitRule`` in ``argus.config``). The
buckets live in one SQLite table in the state directory and every check is a
single atomic UPSERT, so gunicorn workers and their threads draw from the same
buckets without a lock of their own. Bucket keys are client addresses and
SHA-256 hashes of tokens, never the tokens themselves.

When the table cannot be read or written, requests are allowed and the error is
logged: a broken limiter must not take the service down.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import sqlite3
import time
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from argus.config import RateLimitRule
from argus.logs import RepeatLimiter
from argus.sqlite_connections import ThreadConnections

log = logging.getLogger(__name__)

# Rows idle for longer than the longest rule period are full buckets again, so
# deleting them changes no decision. Each process prunes at most this often.
PRUNE_INTERVAL_SECONDS = 60.0
BUSY_TIMEOUT_SECONDS = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rate_buckets (
    key TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated_at REAL NOT NULL,
    allowed INTEGER NOT NULL
) WITHOUT ROWID
"""

# SQLite evaluates every SET expression on the row as it was before the update,
# so `allowed` and `tokens` both see the old balance. A request is allowed when
# the refilled balance has at least one whole token, and only then is one taken.
_HIT = """
INSERT INTO rate_buckets (key, tokens, updated_at, allowed)
VALUES (:key, :count - 1, :now, 1)
ON CONFLICT (key) DO UPDATE SET
    tokens = min(:count, tokens + max(0, :now - updated_at) * :rate)
        - (min(:count, tokens + max(0, :now - updated_at) * :rate) >= 1),
    allowed = min(:count, tokens + max(0, :now - updated_at) * :rate) >= 1,
    updated_at = :now
RETURNING tokens, allowed
"""


@dataclass(frozen=True)
class RateDecision:
    """Outcome of one check, with ``retry_after`` in whole seconds."""

    allowed: bool
    retry_after: int = 0


ALLOWED = RateDecision(True)


def hash_key(value: str) -> str:
    """Return a bucket key for a secret such as a token: 128 bits of its SHA-256."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def address_key(address: str | None) -> str:
    """Return the bucket key of a client address.

    IPv6 clients usually own a whole /64, so they share one bucket per /64.
    """
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class RateLimiter:
    """Token buckets for named rules, kept in a SQLite file shared by processes."""

    def __init__(
        self,
        path: Path,
        rules: Iterable[RateLimitRule],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.rules = {rule.name: rule for rule in rules}
        self.clock = clock
        self._longest_seconds = max(
            (rule.seconds for rule in self.rules.values()), default=0.0
        )
        # Counters need no durability, because losing the last updates in a
        # power cut only refills some buckets early (synchronous=OFF).
        self._connections = ThreadConnections(
            self.path,
            busy_timeout_seconds=BUSY_TIMEOUT_SECONDS,
            synchronous="OFF",
            prepare=lambda connection: connection.execute(_SCHEMA),
        )
        self._next_prune = 0.0
        self._error_log = RepeatLimiter(interval=60.0)
        # Callers log denials through this, once a minute per bucket.
        self.denial_log = RepeatLimiter(interval=60.0)

    @property
    def enabled(self) -> bool:
        return bool(self.rules)

    def hit(self, rule_name: str, key: str) -> RateDecision:
        """Count one request against a rule's bucket for ``key``.

        Rules that are not configured (or switched off) always allow.
        """
        rule = self.rules.get(rule_name)
        if rule is None:
            return ALLOWED
        now = self.clock()
        rate = rule.count / rule.seconds
        try:
            connection = self._connection()
            row = connection.execute(
                _HIT,
                {
                    "key": f"{rule_name}:{key}",
                    "count": rule.count,
                    "now": now,
                    "rate": rate,
                },
            ).fetchone()
            self._prune_if_due(connection, now)
        except sqlite3.Error as error:
            self._log_error(error)
            return ALLOWED
        tokens, allowed = row
        if allowed:
            return ALLOWED
        return RateDecision(False, max(1, math.ceil((1 - tokens) / rate)))

    def _connection(self) -> sqlite3.Connection:
        return self._connections.get()

    def _prune_if_due(self, connection: sqlite3.Connection, now: float) -> None:
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_INTERVAL_SECONDS
        connection.execute(
            "DELETE FROM rate_buckets WHERE updated_at < ?",
            (now - self._longest_seconds,),
        )

    def _log_error(self, error: sqlite3.Error) -> None:
        suppressed = self._error_log.allow(type(error).__name__)
        if suppressed is None:
            return
        log.error(
            "rate limit table %s failed, allowing the request: %s%s",
            self.path,
            error,
            f" ({suppressed} repeats not logged)" if suppressed else "",
        )
