"""Logging set-up: one line per event, plain text or JSON lines."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time

_configured = False


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class RequestIdFilter(logging.Filter):
    """Adds the current request's id, when there is one, to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        from flask import g
        from flask import has_request_context

        request_id = g.get("request_id") if has_request_context() else None
        record.request_id = request_id
        record.request_tag = f" [{request_id}]" if request_id else ""
        return True


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Configure the root logger once per process; later calls change nothing."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # botocore and urllib3 log request details at DEBUG, headers included.
    for name in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    _configured = True


class RepeatLimiter:
    """Allows one log line per key per ``interval`` seconds and counts the rest."""

    def __init__(self, interval: float = 60.0, max_keys: int = 10_000) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self._last: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> int | None:
        """Return how many lines were suppressed since the last allowed one.

        None means: suppress this line too.
        """
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last[0] < self.interval:
                self._last[key] = (last[0], last[1] + 1)
                return None
            if len(self._last) >= self.max_keys:
                self._last.clear()
            self._last[key] = (now, 0)
            return 0 if last is None else last[1]
