"""CORS for the endpoints the extension and the dashboard call from a browser."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Response
from flask import current_app
from flask import request

ALLOWED_HEADERS = "x-extension-jwt, authorization, content-type"
PREFLIGHT_MAX_AGE_SECONDS = 600


def _allowed_origin() -> str | None:
    origin = request.headers.get("Origin")
    if origin and origin in current_app.extensions["argus"].settings.cors_origins:
        return origin
    return None


def cross_origin(view: Callable[..., Response]) -> Callable[..., Response]:
    """Respond to preflights and add CORS headers for the configured origins.

    The route must accept OPTIONS. Other origins get no CORS headers, so the
    browser keeps their pages from reading the response.
    """

    @wraps(view)
    def wrapper(*args, **kwargs) -> Response:
        if request.method == "OPTIONS":
            response = Response(status=204)
        else:
            response = view(*args, **kwargs)
        origin = _allowed_origin()
        response.headers.add("Vary", "Origin")
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
        return response

    return wrapper
