"""Linking a streamer: Twitch's OAuth redirect, token claims and checks."""

from __future__ import annotations

import logging
import re
from importlib import resources

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import redirect
from flask import request

from argus.api.cors import cross_origin
from argus.api.errors import plain
from argus.api.run_info import read_json_object
from argus.api.run_info import read_request_body
from argus.api.security import is_address_over_limit
from argus.api.security import is_token_shaped
from argus.api.security import limit_by_address
from argus.api.security import limit_by_secret
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
# Twitch's authorization codes are short ASCII strings, and this pattern bounds
# what is forwarded to its token endpoint.
CODE_PATTERN = re.compile(r"[\x21-\x7e]{1,512}")
# The token responses carry a secret. The redirects carry none, but they come
# from a URL with the OAuth code in it.
NO_STORE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

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
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def services() -> Services:
    return current_app.extensions["argus"]


def _redirect(location: str) -> Response:
    response = redirect(location, code=302)
    response.headers.update(NO_STORE_HEADERS)
    return response


def _no_store(response: Response) -> Response:
    response.headers.update(NO_STORE_HEADERS)
    return response


def _fail(reason: str, state: str | None = None) -> Response:
    state_id = state_log_id(state) if state and is_valid_state(state) else "-"
    log.warning("OAuth login %s failed: %s", state_id, reason)
    return _redirect(FAIL_PAGE)


@bp.get("/oauth_token")
def oauth_token() -> Response:
    """Finish Twitch's authorization-code flow and record a pending login.

    Every outcome, bad input included, is a 302 to the success or the failure
    page, because a browser shows the streamer whatever this returns.
    """
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
    if CODE_PATTERN.fullmatch(code) is None:
        return _fail("the code is malformed", state)
    if is_address_over_limit("oauth_token"):
        return _fail("too many login attempts from this address", state)

    argus = services()
    try:
        access_token = argus.oauth.exchange_code(code)
        user = argus.oauth.fetch_user(access_token)
    except OAuthError as oauth_error:
        return _fail(str(oauth_error), state)
    try:
        argus.logins.record(state, user)
    except StoreError as error:
        # The fail page asks the streamer to start the link again.
        return _fail(f"storing the pending login failed: {error}", state)
    return _redirect(SUCCESS_PAGE)


@bp.post("/get_argus_token")
def get_argus_token() -> Response:
    """Hand a client the token of its login: one line, or two for protocol "2".

    A body that is not a JSON object gets 400. Any other problem (a version
    other than 1 or 2, a state that is not 32 hex characters, a login not
    approved yet or already claimed) gets the protocol's `FAIL`.
    """
    limit_by_address("get_argus_token")
    body = read_json_object(read_request_body())
    version = _protocol_version(body.get("argusProtocolVersion"))
    state = body.get("state")
    if version is None or not is_valid_state(state):
        return _no_store(plain(FAIL))
    limit_by_secret("get_argus_token.state", state.lower())
    claimed = services().logins.claim(state)
    if claimed is None:
        return _no_store(plain(FAIL))
    if version == "2":
        return _no_store(plain(f"{claimed.token}\n{claimed.picture or ''}"))
    return _no_store(plain(claimed.token))


def _protocol_version(value: object) -> str | None:
    """Return "1" or "2" for the versions /get_argus_token serves, else None.

    An absent version gets the one-line response of protocol 1.
    """
    if value is None:
        return "1"
    if isinstance(value, str) and value in ("1", "2"):
        return value
    # bool is an int subclass, and True == 1.
    if type(value) is int and value in (1, 2):
        return str(value)
    return None


@bp.get("/check_argus_token")
def check_argus_token() -> Response:
    """Tell a client whether its token is linked: any bad token is token_not_ok."""
    limit_by_address("check_argus_token")
    token = request.args.get("argus_token", "")
    if not is_token_shaped(token):
        return _no_store(plain("token_not_ok"))
    limit_by_secret("check_argus_token.token", token)
    link = services().links.find_link(token)
    if link is None:
        log.info("token check failed for %s", token_log_id(hash_token(token)))
        return _no_store(plain("token_not_ok"))
    return _no_store(plain("token_ok"))


@bp.route("/check_login", methods=["GET", "OPTIONS"])
@cross_origin
def check_login() -> Response:
    """Tell the extension's configuration page whether its channel is linked.

    A missing or invalid extension JWT gets `FAIL`, like an unlinked channel.
    """
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
