"""POST /run_info: a run state from the game mod or the desktop app."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request

from argus import metrics
from argus.api.errors import BadRequest
from argus.api.errors import plain
from argus.broadcast.buffer import BufferedState
from argus.links import hash_token
from argus.links import token_log_id
from argus.services import Services
from argus.transform import transform_run_data

log = logging.getLogger(__name__)

bp = Blueprint("run_info", __name__)

RUN_SECTIONS = (
    "boonData",
    "weaponData",
    "familiarData",
    "extraData",
    "elementalData",
    "pinData",
    "vowData",
    "arcanaData",
)
MAX_SECTION_LENGTH = 16 * 1024
MAX_TOKEN_LENGTH = 256


def read_json_object(raw: bytes) -> dict[str, Any]:
    """Parse a request body that must be a JSON object; raise BadRequest."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("request body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def parse_run_data(body: dict[str, Any]) -> dict[str, str | None]:
    """Return the known sections of ``runData``; raise BadRequest if malformed."""
    run_data = body.get("runData")
    if run_data is None:
        raise BadRequest("missing runData")
    if not isinstance(run_data, dict):
        raise BadRequest("runData must be a JSON object")
    sections: dict[str, str | None] = {}
    for name in RUN_SECTIONS:
        value = run_data.get(name)
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"runData.{name} must be a string")
        if value is not None and len(value) > MAX_SECTION_LENGTH:
            raise BadRequest(
                f"runData.{name} is longer than {MAX_SECTION_LENGTH} characters"
            )
        sections[name] = value
    return sections


def services() -> Services:
    return current_app.extensions["argus"]


@bp.post("/run_info")
def run_info() -> Response:
    body = read_json_object(request.get_data(cache=False))
    run_data = parse_run_data(body)
    token = body.get("argusToken")
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        return plain("bad_argus_token")

    argus = services()
    link = argus.links.find_link_cached(token)
    if link is None:
        log.info("run update with unknown token %s", token_log_id(hash_token(token)))
        return plain("bad_argus_token")
    mappings = argus.mappings.current()
    if mappings is None:
        return plain("game mappings are not loaded yet, try again later", 503)

    result = transform_run_data(run_data, mappings)
    log_problems(argus, link.channel_id, result.problems)
    run_json = json.dumps(result.run, separators=(",", ":"), ensure_ascii=False)
    profile = {"twitchUsername": link.username, "twitchProfilePic": link.picture}
    state = BufferedState(
        run_json=run_json,
        profile_json=json.dumps(profile, ensure_ascii=False),
        received_at=time.time(),
    )
    argus.outbox_buffer.submit(link.channel_id, state)
    metrics.RUN_UPDATES.inc()
    return plain("ok")


def log_problems(argus: Services, channel_id: str, problems) -> None:
    """Log what the transformation skipped, once a minute per kind of problem."""
    for problem in problems:
        key = f"{channel_id}:{problem.kind}:{problem.section}:{problem.value}"
        suppressed = argus.problem_log.allow(key)
        if suppressed is None:
            continue
        log.warning(
            "channel %s: %s in %s: %r%s",
            channel_id,
            problem.kind.replace("_", " "),
            problem.section,
            problem.value,
            f" ({suppressed} repeats not logged)" if suppressed else "",
        )
