"""The latest run of each channel, kept in the store for viewers and the dashboard.

Only the process that delivers broadcasts writes these objects, in arrival
order, so every worker process and machine reads the same latest run.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from argus.store import ObjectStore
from argus.store import encode_json

log = logging.getLogger(__name__)

RUN_PREFIX = "runs/"
DASHBOARD_KEY = "dashboard/recent"


@dataclass(frozen=True)
class RunRecord:
    """A channel's latest transformed run, serialised, with its profile."""

    channel_id: str
    run_json: str
    profile: dict
    updated_at: float

    def to_json(self) -> dict:
        return {
            "channelId": self.channel_id,
            "runJson": self.run_json,
            "profile": self.profile,
            "updatedAt": self.updated_at,
        }

    @classmethod
    def from_json(cls, value: dict) -> RunRecord:
        return cls(
            channel_id=str(value["channelId"]),
            run_json=str(value["runJson"]),
            profile=dict(value.get("profile") or {}),
            updated_at=float(value["updatedAt"]),
        )


# When a streamer goes live, every viewer's extension requests the run at once.
# A worker serves all of them from one store read for this long.
VIEWER_CACHE_SECONDS = 1.0
VIEWER_CACHE_MAX_ENTRIES = 10_000


class RunArchive:
    """Reads and writes the latest run of each channel and the dashboard list."""

    def __init__(
        self, store: ObjectStore, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.clock = clock
        self._recent: dict[str, tuple[float, RunRecord | None]] = {}
        self._recent_lock = threading.Lock()

    def save(self, record: RunRecord) -> None:
        self.store.put(RUN_PREFIX + record.channel_id, encode_json(record.to_json()))
        self._remember(record.channel_id, record)

    def load_for_viewers(self, channel_id: str) -> RunRecord | None:
        """Return the latest run, read from the store at most once a second."""
        now = self.clock()
        with self._recent_lock:
            cached = self._recent.get(channel_id)
        if cached is not None and now - cached[0] < VIEWER_CACHE_SECONDS:
            return cached[1]
        record = self.load(channel_id)
        self._remember(channel_id, record)
        return record

    def _remember(self, channel_id: str, record: RunRecord | None) -> None:
        with self._recent_lock:
            if len(self._recent) >= VIEWER_CACHE_MAX_ENTRIES:
                self._recent.clear()
            self._recent[channel_id] = (self.clock(), record)

    def load(self, channel_id: str) -> RunRecord | None:
        stored = self.store.get(RUN_PREFIX + channel_id)
        if stored is None:
            return None
        try:
            return RunRecord.from_json(stored.json())
        except (ValueError, KeyError, TypeError) as error:
            log.error("stored run of channel %s is malformed: %s", channel_id, error)
            return None

    def save_dashboard(self, records: list[RunRecord]) -> None:
        body = encode_json([record.to_json() for record in records])
        self.store.put(DASHBOARD_KEY, body)

    def load_dashboard(self) -> list[RunRecord]:
        stored = self.store.get(DASHBOARD_KEY)
        if stored is None:
            return []
        try:
            return [RunRecord.from_json(item) for item in stored.json()]
        except (ValueError, KeyError, TypeError) as error:
            log.error("stored dashboard list is malformed: %s", error)
            return []


def render_dashboard(records: list[RunRecord], since: float) -> str:
    """Return the dashboard JSON of the runs updated at or after ``since``.

    The stored run JSON is spliced in as it is, so that it is not parsed and
    serialised again on every poll.
    """
    members = []
    for record in sorted(records, key=lambda record: record.channel_id):
        if record.updated_at < since:
            continue
        profile = {
            "twitchUsername": record.profile.get("twitchUsername"),
            "twitchProfilePic": record.profile.get("twitchProfilePic"),
        }
        profile = {key: value for key, value in profile.items() if value is not None}
        members.append(
            f"{json.dumps(record.channel_id)}:"
            f'{{"twitchProfile":{json.dumps(profile, ensure_ascii=False)},'
            f'"runData":{record.run_json}}}'
        )
    return "{" + ",".join(members) + "}"


class CachedText:
    """A value computed at most once per ``ttl_seconds``, shared by threads."""

    def __init__(
        self,
        compute: Callable[[], str],
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._compute = compute
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._value: str | None = None
        self._expires_at = 0.0

    def get(self) -> str:
        with self._lock:
            if self._value is None or self._clock() >= self._expires_at:
                self._value = self._compute()
                self._expires_at = self._clock() + self._ttl
            return self._value
