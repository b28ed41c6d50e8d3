"""Per-request bookkeeping: request ids, metrics and start of background work."""

from __future__ import annotations

import secrets
import time

from flask import Flask
from flask import Response
from flask import g
from flask import request

from argus import metrics


def init_app(app: Flask) -> None:
    """Register the request hooks on the app."""

    @app.before_request
    def begin_request() -> None:
        g.request_id = secrets.token_hex(4)
        g.started_at = time.perf_counter()
        # The delivery and refresh threads start with the first request, not
        # at import, so that CLI commands never start them.
        app.extensions["argus"].start_background()

    @app.after_request
    def finish_request(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.REQUESTS.labels(endpoint, str(response.status_code)).inc()
        started_at = g.get("started_at")
        if started_at is not None:
            metrics.REQUEST_SECONDS.labels(endpoint).observe(
                time.perf_counter() - started_at
            )
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response
