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
from werkzeug.exceptions import RequestEntityTooLarge

from argus import metrics
from argus.api.errors import BadRequest
from argus.api.errors import plain
from argus.api.security import is_protocol_version
from argus.api.security import is_token_shaped
from argus.api.security import limit_by_address
from argus.api.security import limit_by_secret
from argus.broadcast.buffer import BufferedState
from argus.links import hash_token
from argus.links import token_log_id
from argus.services import Services

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
# The largest real runs have about 60 boons in 1.6 KB of boonData.
MAX_SECTION_LENGTH = 16 * 1024
MAX_SECTION_ITEMS = 200
# These sections join their items with `;;` instead of spaces.
FIELD_LIST_SECTIONS = frozenset({"elementalData", "pinData"})
# A run can report hundreds of problems, so only the first are logged, after
# one line with their total.
MAX_PROBLEMS_LOGGED = 20


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_request_body() -> bytes:
    """Read the request body and raise RequestEntityTooLarge past MAX_CONTENT_LENGTH.

    Werkzeug rejects a Content-Length over the limit before reading, but it
    cuts a chunked body at the limit without an error. Such a body that fills
    the limit is therefore rejected too, which includes one of exactly the
    limit's size.
    """
    try:
        data = request.get_data(cache=False)
    except ConnectionError:
        # The server's socket timed out while the client sent the body.
        raise BadRequest("request body timed out", 408) from None
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and request.content_length is None and len(data) >= limit:
        raise RequestEntityTooLarge()
    return data


def read_json_object(raw: bytes) -> dict[str, Any]:
    """Parse a request body that must be a JSON object; raise BadRequest.

    NaN and Infinity are rejected because JSON has no such values, and nesting
    deep enough to exhaust the parser's recursion is rejected like bad JSON.
    """
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise BadRequest("request body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def count_section_items(name: str, text: str) -> int:
    """Count the items of a section as the transformation splits them."""
    if name in FIELD_LIST_SECTIONS:
        return text.count(";;") + 1
    return len(text.split())


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
        if value is not None and count_section_items(name, value) > MAX_SECTION_ITEMS:
            raise BadRequest(f"runData.{name} has more than {MAX_SECTION_ITEMS} items")
        sections[name] = value
    return sections


def services() -> Services:
    return current_app.extensions["argus"]


@bp.post("/run_info")
def run_info() -> Response:
    """Accept a run state and queue its broadcast.

    A body the service cannot use (not a JSON object, a bad
    argusProtocolVersion, runData missing or with a section that is not a
    string, too long or with too many items) gets 400 with a short message.
    A token that is missing, malformed, unknown or replaced gets the protocol's
    `bad_argus_token`. Items inside a section that are unknown or malformed are
    skipped by the transformation, and the rest of the run is still broadcast.
    """
    limit_by_address("run_info")
    body = read_json_object(read_request_body())
    if not is_protocol_version(body.get("argusProtocolVersion")):
        raise BadRequest('argusProtocolVersion must be a number such as "2"')
    run_data = parse_run_data(body)
    token = body.get("argusToken")
    if not is_token_shaped(token):
        return plain("bad_argus_token")
    limit_by_secret("run_info.token", token)

    argus = services()
    link = argus.links.find_link_cached(token)
    if link is None:
        log.info("run update with unknown token %s", token_log_id(hash_token(token)))
        return plain("bad_argus_token")
    mappings = argus.mappings.current()
    if mappings is None:
        return plain("game mappings are not loaded yet, try again later", 503)

    result = argus.run_serializer.serialize(run_data, mappings)
    log_problems(argus, link.channel_id, result.problems)
    profile = {"twitchUsername": link.username, "twitchProfilePic": link.picture}
    state = BufferedState(
        run_json=result.run_json,
        profile_json=json.dumps(profile, ensure_ascii=False),
        received_at=time.time(),
    )
    argus.outbox_buffer.submit(link.channel_id, state)
    metrics.RUN_UPDATES.inc()
    return plain("ok")


def log_problems(argus: Services, channel_id: str, problems) -> None:
    """Log what the transformation skipped, once a minute per kind of problem."""
    many = len(problems) > MAX_PROBLEMS_LOGGED
    if many and argus.problem_log.allow(f"{channel_id}:many") is not None:
        log.warning(
            "channel %s: %d problems in one run update, logging the first %d",
            channel_id,
            len(problems),
            MAX_PROBLEMS_LOGGED,
        )
    for problem in problems[:MAX_PROBLEMS_LOGGED]:
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
