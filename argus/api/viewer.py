"""Endpoints the extension and the public dashboard call from viewers' browsers."""

from __future__ import annotations

import logging
import time

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request

from argus.api.cors import cross_origin
from argus.api.errors import plain
from argus.runs import CachedText
from argus.runs import render_dashboard
from argus.services import Services
from argus.twitch.jwt import InvalidExtensionToken
from argus.twitch.jwt import channel_id_from_token

log = logging.getLogger(__name__)

bp = Blueprint("viewer", __name__)

NO_DATA = "NO_DATA"
# The dashboard polls every 5 s from every open browser; all of them share one
# rendering per worker process for this long.
DASHBOARD_CACHE_SECONDS = 2.0


def services() -> Services:
    return current_app.extensions["argus"]


def json_text(text: str) -> Response:
    return Response(text, mimetype="application/json")


@bp.route("/get_streamer_run_data", methods=["GET", "OPTIONS"])
@cross_origin
def get_streamer_run_data() -> Response:
    """Return the channel's last run, or NO_DATA when it has none.

    A missing or invalid extension JWT gets 401 with a short message.
    """
    argus = services()
    token = request.headers.get("x-extension-jwt", "")
    try:
        channel_id = channel_id_from_token(token, argus.settings.extension_secrets)
    except InvalidExtensionToken as error:
        log.info("run data request with an invalid extension token: %s", error)
        return plain("invalid extension token", 401)
    record = argus.archive.load_for_viewers(channel_id)
    if record is None:
        return plain(NO_DATA)
    return json_text(record.run_json)


@bp.route("/dashboard_run_data", methods=["GET", "OPTIONS"])
@cross_origin
def dashboard_run_data() -> Response:
    argus = services()
    cache = current_app.extensions.get("argus.dashboard")
    if cache is None:
        recent_seconds = argus.settings.dashboard_recent_seconds

        def render() -> str:
            since = time.time() - recent_seconds
            return render_dashboard(argus.archive.load_dashboard(), since)

        cache = CachedText(render, DASHBOARD_CACHE_SECONDS)
        current_app.extensions["argus.dashboard"] = cache
    return json_text(cache.get())
