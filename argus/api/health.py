"""Health endpoints for the platform's checks."""

from __future__ import annotations

from flask import Blueprint
from flask import Response

from argus.api.errors import plain

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Answer while the process serves requests."""
    return plain("ok")
