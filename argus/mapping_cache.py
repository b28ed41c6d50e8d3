"""The game mappings in use, reloaded from the store while the service runs."""

from __future__ import annotations

import logging
import threading
import time

from argus import metrics
from argus.logs import RepeatLimiter
from argus.mappings import MappingError
from argus.mappings import Mappings
from argus.mappings import parse_mappings
from argus.store import ObjectStore
from argus.store import StoreError

log = logging.getLogger(__name__)

# The object name the original service used, kept so existing buckets work.
MAPPINGS_KEY = "uiMappings"


def publish_mappings(store: ObjectStore, raw: bytes) -> Mappings:
    """Validate a mapping file and write it to the store; raise MappingError."""
    mappings = parse_mappings(raw)
    store.put(MAPPINGS_KEY, raw)
    return mappings


class MappingCache:
    """The last valid mappings from the store, refreshed every ``refresh_seconds``.

    A new version that fails validation is logged and ignored, so the service
    keeps working with the last good one.
    """

    def __init__(self, store: ObjectStore, refresh_seconds: float) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self._mappings: Mappings | None = None
        self._version: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Requests call refresh() while no mappings are loaded, so the same
        # failure would otherwise be logged once per request.
        self._problem_log = RepeatLimiter(interval=60.0)

    def current(self) -> Mappings | None:
        """Return the mappings in use, loading them on first use."""
        if self._mappings is None:
            self.refresh()
        return self._mappings

    def refresh(self) -> str:
        """Reload the mappings if the stored version changed; return the result."""
        with self._lock:
            result = self._refresh_locked()
        metrics.MAPPING_REFRESHES.labels(result).inc()
        return result

    def _refresh_locked(self) -> str:
        try:
            stored = self.store.get(MAPPINGS_KEY)
        except StoreError as error:
            metrics.STORE_ERRORS.labels("load_mappings").inc()
            suppressed = self._problem_log.allow("error")
            if suppressed is not None:
                log.error(
                    "loading mappings failed, keeping the current ones: %s%s",
                    error,
                    _repeats(suppressed),
                )
            return "error"
        if stored is None:
            suppressed = self._problem_log.allow("missing")
            if suppressed is not None:
                log.error(
                    "no mappings in the store under %r; publish them with "
                    "'flask --app app argus update-ui-mappings FILE'%s",
                    MAPPINGS_KEY,
                    _repeats(suppressed),
                )
            return "missing"
        if stored.version == self._version:
            return "unchanged"
        try:
            mappings = parse_mappings(stored.body)
        except MappingError as error:
            log.error("new mappings are invalid, keeping the current ones: %s", error)
            self._version = stored.version
            return "invalid"
        self._mappings = mappings
        self._version = stored.version
        log.info("mappings loaded: %s", mappings.counts())
        return "loaded"

    def start(self) -> None:
        """Start refreshing in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="argus-mappings", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception:
                metrics.MAPPING_REFRESHES.labels("error").inc()
                log.exception("mapping refresh failed")
                time.sleep(1.0)


def _repeats(suppressed: int) -> str:
    return f" ({suppressed} repeats not logged)" if suppressed else ""
