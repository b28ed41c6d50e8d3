"""Health endpoints: /healthz for liveness, /readyz for readiness.

``/healthz`` returns 200 while the process serves requests. ``/readyz`` also
checks that the store responds and that the game mappings are loaded. Its check
runs in a background thread with a deadline, so a hung S3 endpoint turns into a
503 within about a second instead of a probe that hangs for the botocore
timeouts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app

from argus import metrics
from argus.api.errors import plain
from argus.services import Services
from argus.store import StoreError

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

# A result younger than this is reused, so frequent probes start at most two
# checks a second per worker process.
READY_CACHE_SECONDS = 0.5
# A probe waits this long for a running check. With the cache age, this bounds
# how long /readyz keeps returning 200 after the store stopped responding.
READY_DEADLINE_SECONDS = 1.0
READINESS_KEY = "argus.readiness"


class ReadinessProbe:
    """Runs a readiness check in a background thread and caches its result.

    The check returns None when ready, or a short reason. At most one check
    runs at a time. A probe that finds a check running for longer than the
    deadline gets "timed out" at once.
    """

    def __init__(
        self,
        check: Callable[[], str | None],
        cache_seconds: float = READY_CACHE_SECONDS,
        deadline_seconds: float = READY_DEADLINE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.check = check
        self.cache_seconds = cache_seconds
        self.deadline_seconds = deadline_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._reason: str | None = "not checked yet"
        self._running: threading.Event | None = None
        self._running_since = 0.0

    def reason_not_ready(self) -> str | None:
        """Return None when ready, else the reason; block at most the deadline."""
        with self._lock:
            now = self.clock()
            if now - self._checked_at < self.cache_seconds:
                return self._reason
            if self._running is None:
                self._start_check(now)
            finished = self._running
            deadline = self._running_since + self.deadline_seconds
        if finished.wait(max(0.0, deadline - self.clock())):
            with self._lock:
                return self._reason
        return f"readiness check timed out after {self.deadline_seconds:g}s"

    def _start_check(self, now: float) -> None:
        self._running = threading.Event()
        self._running_since = now
        thread = threading.Thread(
            target=self._run_check,
            args=(self._running,),
            name="argus-readiness",
            daemon=True,
        )
        thread.start()

    def _run_check(self, finished: threading.Event) -> None:
        try:
            reason = self.check()
        except Exception:
            log.exception("readiness check failed")
            reason = "readiness check failed"
        with self._lock:
            previous = self._reason
            self._reason = reason
            self._checked_at = self.clock()
            self._running = None
        finished.set()
        if reason is not None and reason != previous:
            log.warning("not ready: %s", reason)
        elif reason is None and previous is not None:
            log.info("ready")


def check_services(services: Services) -> str | None:
    """Return None if the store responds and mappings are loaded, else the reason."""
    try:
        services.store.check()
    except StoreError as error:
        metrics.STORE_ERRORS.labels("check").inc()
        suppressed = services.problem_log.allow("readiness store check")
        if suppressed is not None:
            log.warning(
                "store check failed: %s%s",
                error,
                f" ({suppressed} repeats not logged)" if suppressed else "",
            )
        return "store unavailable"
    if services.mappings.current() is None:
        return "game mappings not loaded"
    return None


def _readiness_probe(app: Flask) -> ReadinessProbe:
    return app.extensions[READINESS_KEY]


@bp.record_once
def _add_readiness_probe(state) -> None:
    app = state.app
    app.extensions[READINESS_KEY] = ReadinessProbe(
        lambda: check_services(app.extensions["argus"])
    )


@bp.get("/healthz")
def healthz() -> Response:
    """Return 200 while the process serves requests."""
    return plain("ok")


@bp.get("/readyz")
def readyz() -> Response:
    """Return 200 when the store responds and mappings are loaded, else 503."""
    reason = _readiness_probe(current_app).reason_not_ready()
    if reason is None:
        response = plain("ready")
    else:
        response = plain(reason, 503)
    response.headers["Cache-Control"] = "no-store"
    return response
