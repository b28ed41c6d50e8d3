"""Logging set-up: one line per event, plain text or JSON lines.

The service and gunicorn share the same handler: ``configure_logging`` sets it
up in a worker process, and ``gunicorn.conf.py`` passes ``logging_config()`` to
gunicorn as ``logconfig_dict`` so that the master's and the access log's lines
have the same format.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import threading
import time
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any

_configured = False

TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s[%(process)d]%(request_tag)s: %(message)s"
)

# gunicorn passes the values of an access log line as a mapping, and the
# service sets this response header to the request id.
_ACCESS_REQUEST_ID = "{x-request-id}o"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, UTC)
        entry = {
            "time": created.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Formats a record as one plain-text line, with the request id if any."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_tag"):
            request_id = getattr(record, "request_id", None)
            record.request_tag = f" [{request_id}]" if request_id else ""
        return super().format(record)


class RequestIdFilter(logging.Filter):
    """Adds the current request's id, when there is one, to every record.

    Inside a Flask request the id comes from ``flask.g``. gunicorn writes its
    access log line after the request, so for those lines it comes from the
    ``X-Request-Id`` response header.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _flask_request_id() or _access_request_id(record)
        record.request_tag = f" [{record.request_id}]" if record.request_id else ""
        return True


class QueryStringFilter(logging.Filter):
    """Removes query strings from the request lines of Werkzeug's dev server.

    Query strings can contain Argus tokens, OAuth codes and states. gunicorn's
    access log leaves them out through its format (``%(U)s``) instead.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "werkzeug" and isinstance(record.args, tuple):
            record.args = tuple(
                _QUERY_STRING.sub("", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


_QUERY_STRING = re.compile(r"\?\S*")


def _flask_request_id() -> str | None:
    from flask import g
    from flask import has_request_context

    return g.get("request_id") if has_request_context() else None


def _access_request_id(record: logging.LogRecord) -> str | None:
    if record.name != "gunicorn.access" or not isinstance(record.args, Mapping):
        return None
    value = record.args.get(_ACCESS_REQUEST_ID)
    return value if value and value != "-" else None


def logging_config(level: str = "INFO", log_format: str = "text") -> dict[str, Any]:
    """Return the ``logging.config.dictConfig`` settings of the service.

    Every record goes to stderr through one handler, including gunicorn's
    error and access logs, which do not propagate so that no line appears twice.
    """
    level = level.upper()
    formatter = "json" if log_format == "json" else "text"
    # botocore and urllib3 log request details at DEBUG, headers included, and
    # botocore logs where it found credentials at INFO in every process.
    quiet = {"level": "ERROR" if level == "ERROR" else "WARNING"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": RequestIdFilter},
            "query_string": {"()": QueryStringFilter},
        },
        "formatters": {
            "text": {"()": TextFormatter},
            "json": {"()": JsonFormatter},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": formatter,
                "filters": ["request_id", "query_string"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {
                "level": level,
                "handlers": ["stderr"],
                "propagate": False,
            },
            "gunicorn.access": {
                "level": level,
                "handlers": ["stderr"],
                "propagate": False,
            },
            "botocore": quiet,
            "boto3": quiet,
            "urllib3": quiet,
            "s3transfer": quiet,
        },
    }


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Configure logging once per process. Later calls change nothing."""
    global _configured
    if _configured:
        return
    logging.config.dictConfig(logging_config(level, log_format))
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
