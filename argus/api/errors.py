"""Error responses: short plain-text messages, never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask
from flask import Response
from werkzeug.exceptions import HTTPException

from argus import metrics
from argus.store import StoreError

log = logging.getLogger(__name__)


class BadRequest(Exception):
    """A request the service cannot use; the message goes back to the client."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class RateLimited(Exception):
    """Exception for a client over a rate limit.

    The client may retry after ``retry_after`` seconds.
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited for {retry_after} s")
        self.retry_after = retry_after


def plain(message: str, status: int = 200) -> Response:
    return Response(message, status=status, mimetype="text/plain")


def register_error_handlers(app: Flask) -> None:
    """Map every failure to a short plain-text response."""

    @app.errorhandler(BadRequest)
    def bad_request(error: BadRequest) -> Response:
        return plain(error.message, error.status)

    @app.errorhandler(RateLimited)
    def rate_limited(error: RateLimited) -> Response:
        response = plain(f"too many requests, retry after {error.retry_after} s", 429)
        response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        messages = {
            404: "not found",
            405: "method not allowed",
            413: "request body too large",
            429: "too many requests",
        }
        message = messages.get(error.code or 500, error.name.lower())
        return plain(message, error.code or 500)

    @app.errorhandler(StoreError)
    def store_error(error: StoreError) -> Response:
        metrics.STORE_ERRORS.labels("request").inc()
        log.error("store failed during a request: %s", error)
        return plain("storage unavailable, try again later", 503)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Response:
        log.exception("unexpected error")
        return plain("internal error", 500)
