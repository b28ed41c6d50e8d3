"""Linking a streamer: Twitch's OAuth redirect, token claims and checks."""

from __future__ import annotations

import logging
from importlib import resources

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import redirect
from flask import request

from argus.api.cors import cross_origin
from argus.api.errors import plain
from argus.api.run_info import read_json_object
from argus.links import hash_token
from argus.links import token_log_id
from argus.logins import is_valid_state
from argus.logins import state_log_id
from argus.services import Services
from argus.store import StoreError
from argus.twitch.jwt import InvalidExtensionToken
from argus.twitch.jwt import channel_id_from_token
from argus.twitch.oauth import OAuthError

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

SUCCESS_PAGE = "/auth_success.html"
FAIL_PAGE = "/auth_fail.html"
FAIL = "FAIL"
MAX_CODE_LENGTH = 512
MAX_TOKEN_LENGTH = 256

# The pages load nothing from elsewhere; their only style sheet is inline.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def services() -> Services:
    return current_app.extensions["argus"]


def _fail(reason: str, state: str | None = None) -> Response:
    state_id = state_log_id(state) if state and is_valid_state(state) else "-"
    log.warning("OAuth login %s failed: %s", state_id, reason)
    return redirect(FAIL_PAGE, code=302)


@bp.get("/oauth_token")
def oauth_token() -> Response:
    """Finish Twitch's authorization-code flow and record a pending login."""
    state = request.args.get("state")
    code = request.args.get("code")
    error = request.args.get("error")
    if error:
        return _fail(f"Twitch returned error {error[:40]!r}", state)
    if not state:
        return _fail("the redirect has no state")
    if not code:
        return _fail("the redirect has no code", state)
    if not is_valid_state(state):
        return _fail("state is not 32 hexadecimal characters")
    if len(code) > MAX_CODE_LENGTH or not code.isprintable():
        return _fail("the code is malformed", state)

    argus = services()
    try:
        access_token = argus.oauth.exchange_code(code)
        user = argus.oauth.fetch_user(access_token)
    except OAuthError as oauth_error:
        return _fail(str(oauth_error), state)
    try:
        argus.logins.record(state, user)
    except StoreError as error:
        # The fail page tells the streamer to start the link again.
        return _fail(f"storing the pending login failed: {error}", state)
    return redirect(SUCCESS_PAGE, code=302)


@bp.post("/get_argus_token")
def get_argus_token() -> Response:
    """Hand a client the token of its login: one line, or two for protocol "2"."""
    body = read_json_object(request.get_data(cache=False))
    version = body.get("argusProtocolVersion")
    state = body.get("state")
    if version not in (None, "1", "2", 1, 2) or not is_valid_state(state):
        return plain(FAIL)
    claimed = services().logins.claim(state)
    if claimed is None:
        return plain(FAIL)
    if str(version) == "2":
        return plain(f"{claimed.token}\n{claimed.picture or ''}")
    return plain(claimed.token)


@bp.get("/check_argus_token")
def check_argus_token() -> Response:
    token = request.args.get("argus_token", "")
    if not 0 < len(token) <= MAX_TOKEN_LENGTH:
        return plain("token_not_ok")
    link = services().links.find_link(token)
    if link is None:
        log.info("token check failed for %s", token_log_id(hash_token(token)))
        return plain("token_not_ok")
    return plain("token_ok")


@bp.route("/check_login", methods=["GET", "OPTIONS"])
@cross_origin
def check_login() -> Response:
    """Tell the extension's configuration page whether its channel is linked."""
    argus = services()
    token = request.headers.get("x-extension-jwt", "")
    try:
        channel_id = channel_id_from_token(token, argus.settings.extension_secrets)
    except InvalidExtensionToken as error:
        log.info("login check with an invalid extension token: %s", error)
        return plain(FAIL)
    if argus.links.get_link(channel_id) is None:
        return plain(FAIL)
    return plain("LOGIN_OK")


def _page(name: str) -> Response:
    html = resources.files("argus.pages").joinpath(name).read_text()
    response = Response(html, mimetype="text/html")
    response.headers.update(PAGE_HEADERS)
    return response


@bp.get(SUCCESS_PAGE)
def auth_success() -> Response:
    return _page("auth_success.html")


@bp.get(FAIL_PAGE)
def auth_fail() -> Response:
    return _page("auth_fail.html")
