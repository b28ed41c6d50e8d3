"""Linking in process: /oauth_token, token claims, /check_login and the pages.

The Flask app runs in the test process; the session's Twitch emulator plays
Twitch. Helpers for driving the emulator's authorize page live here and are
shared with the HTTP and operator-tool tests.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import threading
import time
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import jwt
import pytest
import requests

from argus import create_app
from argus.config import load_settings
from argus.links import LinkRegistry
from argus.logins import PENDING_LIFETIME_SECONDS
from argus.logins import PENDING_PREFIX
from argus.logins import PendingLogins
from argus.logins import seal_token
from argus.logins import unseal_token
from argus.store import open_store
from argus.twitch.oauth import TwitchUser
from tests import support
from tests.conftest import publish_sample_mappings

# The claims parameter a protocol-2 client sends to /oauth2/authorize.
USER_CLAIMS = json.dumps({"userinfo": {"picture": None, "preferred_username": None}})
EXTENSION_KEY = base64.b64decode(support.EXTENSION_SECRET)
EXTENSION_ORIGIN = f"https://{support.TWITCH_ID}.ext-twitch.tv"
AUTH_LOGGER = "argus.api.auth"


def new_state() -> str:
    """Return a state as the clients make it: 32 hexadecimal characters."""
    return secrets.token_hex(16)


def new_user_id() -> str:
    """Return a Twitch user id that no other test uses."""
    return str(10**11 + secrets.randbelow(10**11))


def authorize(emulator_url: str, redirect_uri: str, state: str, **extra: str) -> str:
    """Open the emulator's authorize page as a client does and return the redirect."""
    params = {
        "client_id": support.TWITCH_ID,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "openid",
        "state": state,
        "claims": USER_CLAIMS,
        **extra,
    }
    response = requests.get(
        emulator_url + "/oauth2/authorize",
        params=params,
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def path_of(url: str) -> str:
    """Return the path and query of a URL, for Flask's test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def extension_jwt(
    channel_id: str | None,
    key: bytes | None = EXTENSION_KEY,
    algorithm: str = "HS256",
    lifetime: int = 60,
) -> str:
    """Sign an extension JWT like the one Twitch gives the extension's front end."""
    claims = {
        "exp": int(time.time()) + lifetime,
        "opaque_user_id": f"U{channel_id}",
        "role": "broadcaster",
        "pubsub_perms": {"listen": ["broadcast"], "send": []},
    }
    if channel_id is not None:
        claims["channel_id"] = channel_id
        claims["user_id"] = channel_id
    return jwt.encode(claims, key, algorithm=algorithm)


class Clock:
    """A clock for PendingLogins that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def app(emulator, tmp_path_factory):
    """One in-process app for the module, because each app takes 0.5 s to stop.

    Tests share its SQLite store, so each uses its own states and user ids.
    """
    directory = tmp_path_factory.mktemp("linking")
    env = support.server_environment(
        ARGUS_STORE=f"sqlite:///{directory / 'store.sqlite3'}",
        ARGUS_TWITCH_API_URL=emulator.url,
        ARGUS_TWITCH_AUTH_URL=emulator.url,
        ARGUS_STATE_DIR=str(directory / "state"),
    )
    publish_sample_mappings(env["ARGUS_STORE"])
    application = create_app(load_settings(env), {"TESTING": True})
    yield application
    application.extensions["argus"].shutdown(timeout=5)


@pytest.fixture
def clock(app):
    """Replace the pending logins' clock for one test."""
    logins = app.extensions["argus"].logins
    original = logins.clock
    logins.clock = Clock()
    yield logins.clock
    logins.clock = original


def pending_count(app) -> int:
    return len(app.extensions["argus"].store.list_keys(PENDING_PREFIX))


@pytest.fixture
def make_app(service_env):
    """Build extra in-process apps with changed settings, stopped after the test."""
    apps = []

    def build(publish: bool = True, **overrides: str):
        env = dict(service_env, **overrides)
        if publish:
            publish_sample_mappings(env["ARGUS_STORE"])
        application = create_app(load_settings(env), {"TESTING": True})
        apps.append(application)
        return application

    yield build
    for application in apps:
        application.extensions["argus"].shutdown(timeout=5)


@pytest.fixture
def clean_faults(emulator):
    """Clear the emulator's fault queue after a test that left faults unused."""
    yield
    queued = requests.get(emulator.url + "/emulator/faults", timeout=5).json()
    if queued:
        requests.post(emulator.url + "/emulator/reset", timeout=5)


def add_fault(emulator, **fault) -> None:
    response = requests.post(emulator.url + "/emulator/faults", json=fault, timeout=5)
    assert response.status_code == 200, response.text


def approve(app, emulator, state: str, **extra: str):
    """Approve a login on the emulator and follow the redirect into the app."""
    redirect_uri = app.extensions["argus"].oauth.redirect_uri
    location = authorize(emulator.url, redirect_uri, state, **extra)
    return app.test_client().get(path_of(location)), location


def claim(client, state, version: object = "2"):
    body = {"state": state}
    if version is not None:
        body["argusProtocolVersion"] = version
    return client.post("/get_argus_token", json=body)


def check_token(client, token: str) -> str:
    return client.get("/check_argus_token", query_string={"argus_token": token}).text


def auth_warnings(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == AUTH_LOGGER and record.levelno >= logging.WARNING
    ]


# --- /oauth_token ---------------------------------------------------------------


def test_oauth_token_success_redirects(app, client, emulator):
    state = new_state()
    response, location = approve(app, emulator, state, emulator_user_id=new_user_id())

    assert location.startswith(app.extensions["argus"].oauth.redirect_uri + "?")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth_success.html"
    assert claim(client, state).status_code == 200
    assert claim(client, state).text == "FAIL"


OAUTH_FAILURES = {
    # case: (emulator authorize extras or a raw query, fault, logged reason)
    "access denied": ({"emulator_deny": "1"}, None, "access_denied"),
    "missing code": ("state={state}", None, "has no code"),
    "missing state": ("code=abc123", None, "has no state"),
    "missing both": ("scope=openid", None, "has no state"),
    "malformed state": ("code=abc123&state=not-hex", None, "32 hexadecimal"),
    "short state": ("code=abc123&state=abcdef", None, "32 hexadecimal"),
    "token endpoint 500": (
        {},
        {"endpoint": "oauth_token", "status": 500},
        "token endpoint returned 500",
    ),
    "userinfo 401": (
        {},
        {"endpoint": "userinfo", "status": 401},
        "userinfo endpoint returned 401",
    ),
    "userinfo 500": (
        {},
        {"endpoint": "userinfo", "status": 500},
        "userinfo endpoint returned 500",
    ),
}


@pytest.mark.usefixtures("clean_faults")
@pytest.mark.parametrize("case", list(OAUTH_FAILURES), ids=list(OAUTH_FAILURES))
def test_oauth_token_failure_redirects(app, client, emulator, caplog, case):
    request_args, fault, reason = OAUTH_FAILURES[case]
    state = new_state()
    if fault is not None:
        add_fault(emulator, **fault)
    caplog.set_level(logging.INFO)
    pending_before = pending_count(app)

    if isinstance(request_args, dict):
        response, _ = approve(
            app, emulator, state, emulator_user_id=new_user_id(), **request_args
        )
    else:
        response = client.get("/oauth_token?" + request_args.format(state=state))

    assert response.status_code == 302
    assert response.headers["Location"] == "/auth_fail.html"
    warnings = auth_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert reason in warnings[0]
    assert pending_count(app) == pending_before
    assert claim(client, state).text == "FAIL"


@pytest.mark.usefixtures("clean_faults")
def test_oauth_token_slow_twitch_times_out(make_app, emulator, caplog):
    application = make_app(ARGUS_HTTP_TIMEOUT_SECONDS="1")
    add_fault(emulator, endpoint="oauth_token", delay_ms=3000)
    caplog.set_level(logging.INFO)

    response, _ = approve(application, emulator, new_state())

    assert response.status_code == 302
    assert response.headers["Location"] == "/auth_fail.html"
    warnings = auth_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "timed out" in warnings[0]


def test_oauth_token_store_down_fails(make_app, emulator, moto_url, caplog):
    missing_bucket = "s3://argus-missing-" + new_state()[:12]
    application = make_app(publish=False, ARGUS_STORE=missing_bucket)
    caplog.set_level(logging.INFO)

    response, _ = approve(application, emulator, new_state())

    assert response.status_code == 302
    assert response.headers["Location"] == "/auth_fail.html"
    warnings = auth_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "storing the pending login failed" in warnings[0]


def test_oauth_token_reused_code_fails(app, client, emulator, caplog):
    state = new_state()
    first, location = approve(app, emulator, state, emulator_user_id=new_user_id())
    caplog.set_level(logging.INFO)

    second = client.get(path_of(location))

    assert first.headers["Location"] == "/auth_success.html"
    assert second.status_code == 302
    assert second.headers["Location"] == "/auth_fail.html"
    warnings = auth_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "Invalid authorization code" in warnings[0]
    response = claim(client, state)
    assert response.status_code == 200
    assert len(response.text.split("\n")) == 2
    assert check_token(client, response.text.split("\n")[0]) == "token_ok"


def test_oauth_token_keeps_username_picture(app, client, emulator):
    user_id = new_user_id()
    picture = "https://static-cdn.jtvnw.net/jtv_user_pictures/test-300x300.png"
    state = new_state()
    approve(
        app,
        emulator,
        state,
        emulator_user_id=user_id,
        emulator_username="SomeStreamer",
        emulator_picture=picture,
    )

    response = claim(client, state)

    assert response.text.split("\n")[1] == picture
    link = app.extensions["argus"].links.get_link(user_id)
    assert link is not None
    assert link.username == "SomeStreamer"
    assert link.picture == picture


# --- /get_argus_token -----------------------------------------------------------


@pytest.mark.parametrize(
    "body", [b"not json", b"", b"[1, 2]", b'"state"', b"{", b"\xff\xfe"]
)
def test_get_token_bad_json_400(client, body):
    response = client.post(
        "/get_argus_token", data=body, content_type="application/json"
    )

    assert response.status_code == 400
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "body",
    [
        {"argusProtocolVersion": "2", "state": new_state()},
        {"argusProtocolVersion": "2"},
        {"argusProtocolVersion": "2", "state": 12345},
        {"argusProtocolVersion": "2", "state": "not-a-state"},
        {},
    ],
)
def test_get_token_unknown_state_fails(client, body):
    response = client.post("/get_argus_token", json=body)

    assert response.status_code == 200
    assert response.text == "FAIL"


@pytest.mark.parametrize(
    "version, lines",
    [("1", 1), (None, 1), ("2", 2), ("3", 0), ("", 0), ("two", 0)],
    ids=["v1", "absent", "v2", "v3", "empty", "word"],
)
def test_get_token_protocol_versions(app, client, emulator, version, lines):
    state = new_state()
    approve(app, emulator, state, emulator_user_id=new_user_id())

    response = claim(client, state, version)

    assert response.status_code == 200
    if lines == 0:
        assert response.text == "FAIL"
        return
    parts = response.text.split("\n")
    assert len(parts) == lines
    assert check_token(client, parts[0]) == "token_ok"
    if lines == 2:
        assert parts[1].startswith("https://")


def test_get_token_claims_once(app, client, emulator):
    state = new_state()
    approve(app, emulator, state, emulator_user_id=new_user_id())

    first = claim(client, state)
    second = claim(client, state)
    third = claim(client, state, "1")

    assert first.text != "FAIL"
    assert second.text == "FAIL"
    assert third.text == "FAIL"


def test_get_token_state_case_insensitive(app, client, emulator):
    state = new_state()
    approve(app, emulator, state, emulator_user_id=new_user_id())

    response = claim(client, state.upper())

    assert response.text != "FAIL"


def test_get_token_expired_login_fails(app, client, emulator, clock):
    state = new_state()
    approve(app, emulator, state, emulator_user_id=new_user_id())
    pending_before = pending_count(app)
    clock.now += PENDING_LIFETIME_SECONDS + 1

    response = claim(client, state)

    assert response.text == "FAIL"
    assert pending_count(app) == pending_before - 1


def test_get_token_within_lifetime_works(app, client, emulator, clock):
    state = new_state()
    approve(app, emulator, state, emulator_user_id=new_user_id())
    clock.now += PENDING_LIFETIME_SECONDS - 1

    response = claim(client, state)

    assert response.text != "FAIL"


def test_get_token_relink_revokes_old(app, client, emulator):
    user_id = new_user_id()
    states = [new_state(), new_state()]
    tokens = []
    for state in states:
        approve(app, emulator, state, emulator_user_id=user_id)
        tokens.append(claim(client, state, "1").text)

    assert tokens[0] != tokens[1]
    assert check_token(client, tokens[0]) == "token_not_ok"
    assert check_token(client, tokens[1]) == "token_ok"


@pytest.mark.parametrize("token", ["", "x" * 300, "unknown-token"])
def test_check_token_unknown_not_ok(client, token):
    assert check_token(client, token) == "token_not_ok"


def test_check_token_missing_parameter(client):
    response = client.get("/check_argus_token")

    assert response.status_code == 200
    assert response.text == "token_not_ok"


# --- Claims and links against both stores ---------------------------------------


def test_claim_race_single_winner(store_url):
    store = open_store(store_url)
    links = LinkRegistry(store)
    logins = PendingLogins(store, links)
    state = new_state()
    logins.record(state, TwitchUser("4242", "Racer", None))
    barrier = threading.Barrier(8)
    results = []

    def race() -> None:
        barrier.wait()
        results.append(logins.claim(state))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [result for result in results if result is not None]
    assert len(results) == 8
    assert len(winners) == 1
    assert links.find_link(winners[0].token) is not None
    assert store.list_keys(PENDING_PREFIX) == []


def test_link_race_one_valid_token(store_url):
    links = LinkRegistry(open_store(store_url))
    barrier = threading.Barrier(6)
    tokens = []

    def race() -> None:
        barrier.wait()
        tokens.append(links.link("5151"))

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    valid = [token for token in tokens if links.find_link(token) is not None]
    assert len(tokens) == 6
    assert len(valid) == 1
    assert links.get_link("5151").token_hash == links.find_link(valid[0]).token_hash


def test_sealed_token_needs_state():
    state = new_state()
    sealed = seal_token("legacy-pending-token", state)

    assert "legacy-pending-token" not in sealed
    assert unseal_token(sealed, state) == "legacy-pending-token"
    assert unseal_token(sealed, state.upper()) == "legacy-pending-token"
    assert seal_token("legacy-pending-token", new_state()) != sealed


# --- /check_login ---------------------------------------------------------------


def check_login(client, token: str | None, origin: str | None = None):
    headers = {}
    if token is not None:
        headers["x-extension-jwt"] = token
    if origin is not None:
        headers["Origin"] = origin
    return client.get("/check_login", headers=headers)


@pytest.fixture
def linked_channel(app) -> str:
    channel_id = new_user_id()
    app.extensions["argus"].links.link(channel_id, username="Linked")
    return channel_id


def test_check_login_linked_ok(client, linked_channel):
    response = check_login(client, extension_jwt(linked_channel))

    assert response.status_code == 200
    assert response.text == "LOGIN_OK"


BAD_LOGIN_TOKENS = {
    "expired": lambda channel: extension_jwt(channel, lifetime=-60),
    "wrong secret": lambda channel: extension_jwt(channel, key=b"another-secret"),
    "alg none": lambda channel: extension_jwt(channel, key=None, algorithm="none"),
    "hs512": lambda channel: extension_jwt(channel, algorithm="HS512"),
    "no channel_id": lambda channel: extension_jwt(None),
    "never linked": lambda channel: extension_jwt(new_user_id()),
    "not a jwt": lambda channel: "not.a.jwt",
    "empty header": lambda channel: "",
    "missing header": lambda channel: None,
}


@pytest.mark.parametrize("case", list(BAD_LOGIN_TOKENS), ids=list(BAD_LOGIN_TOKENS))
def test_check_login_rejects_token(client, linked_channel, case):
    token = BAD_LOGIN_TOKENS[case](linked_channel)

    response = check_login(client, token)

    assert response.status_code == 200
    assert response.text == "FAIL"


def test_check_login_rotation_secrets(make_app):
    old_key = b"rotation-secret-old-0123456789ab"
    new_key = b"rotation-secret-new-0123456789ab"
    secrets_setting = ",".join(
        base64.b64encode(key).decode() for key in (old_key, new_key)
    )
    application = make_app(ARGUS_EXTENSION_SECRET=secrets_setting)
    client = application.test_client()
    channel_id = new_user_id()
    application.extensions["argus"].links.link(channel_id)

    assert check_login(client, extension_jwt(channel_id, key=new_key)).text == (
        "LOGIN_OK"
    )
    assert check_login(client, extension_jwt(channel_id, key=old_key)).text == (
        "LOGIN_OK"
    )
    assert check_login(client, extension_jwt(channel_id)).text == "FAIL"
    expired = extension_jwt(channel_id, key=new_key, lifetime=-60)
    assert check_login(client, expired).text == "FAIL"


def test_check_login_preflight_allows_extension(client):
    response = client.options(
        "/check_login",
        headers={
            "Origin": EXTENSION_ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-extension-jwt",
        },
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == EXTENSION_ORIGIN
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "x-extension-jwt" in [name.strip() for name in allowed.split(",")]
    assert "GET" in response.headers["Access-Control-Allow-Methods"]


def test_check_login_preflight_unknown_origin(client):
    response = client.options(
        "/check_login",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-extension-jwt",
        },
    )

    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Headers" not in response.headers


def test_check_login_answer_has_cors(client, linked_channel):
    response = check_login(client, extension_jwt(linked_channel), EXTENSION_ORIGIN)

    assert response.text == "LOGIN_OK"
    assert response.headers["Access-Control-Allow-Origin"] == EXTENSION_ORIGIN


# --- Pages ----------------------------------------------------------------------

SECURITY_HEADERS = (
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
)
# Any reference that makes the browser load or open something: the pages must
# need nothing but themselves.
EXTERNAL_REFERENCE = re.compile(r"""(?:src|href|action)\s*=|url\(|@import""", re.I)


@pytest.mark.parametrize("path", ["/auth_success.html", "/auth_fail.html"])
def test_pages_are_self_contained(client, path):
    response = client.get(path)

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert EXTERNAL_REFERENCE.search(response.text) is None
    assert "<title>" in response.text
    for header in SECURITY_HEADERS:
        assert header in response.headers, header
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
