"""Tests of the Twitch emulator (tools/twitch_emulator.py), run as a child process."""

from __future__ import annotations

import base64
import importlib.util
import json
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import jwt
import pytest
import requests

from tests.support import CLIENT_SECRET
from tests.support import EXTENSION_SECRET
from tests.support import OWNER_ID
from tests.support import TWITCH_ID
from tests.support import ServerProcess
from tests.support import free_port
from tests.support import python_command
from tests.support import server_environment

EMULATOR = "tools/twitch_emulator.py"
EMULATOR_PATH = Path(__file__).resolve().parents[1] / EMULATOR
SECRET_KEY = base64.b64decode(EXTENSION_SECRET)
OTHER_KEY = b"another-secret-of-thirty-two-byt"
CHANNEL = "200000002"
OTHER_CHANNEL = "300000003"
REDIRECT_URI = "http://127.0.0.1:9/oauth_token"
DEFAULT_USER_ID = "123456789"
TIMEOUT = 5

# The "limited" emulator empties after this many messages and refills at this rate.
LIMITED_CAPACITY = 3
LIMITED_REFILL_PER_SECOND = 2.0
LIMITED_TOKEN_DELAY_MS = 300
LIMITED_CODE_LIFETIME_SECONDS = 0.5

REMOVE = object()  # claim override that deletes the claim


# --- Fixtures ----------------------------------------------------------------------


def start_emulator(log_path: Path, *options: str, **env: str) -> ServerProcess:
    """Start the emulator on a free port and wait until /emulator/health responds."""
    port = free_port()
    command = python_command(EMULATOR, "--port", str(port), *options)
    return ServerProcess(
        command,
        port,
        server_environment(**env),
        ready_path="/emulator/health",
        log_path=log_path,
    )


@pytest.fixture(scope="module")
def default_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run an emulator with default options for the whole module."""
    log_path = tmp_path_factory.mktemp("emulator") / "default.log"
    server = start_emulator(log_path)
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def limited_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run an emulator with a small bucket, slow tokens, no owner and two secrets."""
    log_path = tmp_path_factory.mktemp("emulator") / "limited.log"
    other_secret = base64.b64encode(OTHER_KEY).decode()
    server = start_emulator(
        log_path,
        "--rate-capacity",
        str(LIMITED_CAPACITY),
        "--rate-refill-per-second",
        str(LIMITED_REFILL_PER_SECOND),
        "--token-delay-ms",
        str(LIMITED_TOKEN_DELAY_MS),
        "--code-lifetime-seconds",
        str(LIMITED_CODE_LIFETIME_SECONDS),
        ARGUS_OWNER_ID="",
        ARGUS_EXTENSION_SECRET=f"{other_secret},{EXTENSION_SECRET}",
    )
    yield server.url
    server.stop()


@pytest.fixture
def twitch(default_emulator: str) -> str:
    """Return the default emulator's URL after clearing its state."""
    requests.post(default_emulator + "/emulator/reset", timeout=TIMEOUT)
    return default_emulator


@pytest.fixture
def limited(limited_emulator: str) -> str:
    """Return the limited emulator's URL after clearing its state."""
    requests.post(limited_emulator + "/emulator/reset", timeout=TIMEOUT)
    return limited_emulator


# --- Helpers -----------------------------------------------------------------------


def ebs_claims(**overrides: Any) -> dict[str, Any]:
    """Return the claims of a valid EBS broadcast JWT, changed by `overrides`."""
    claims: dict[str, Any] = {
        "exp": int(time.time()) + 60,
        "user_id": OWNER_ID,
        "role": "external",
        "channel_id": CHANNEL,
        "pubsub_perms": {"send": ["broadcast"]},
    }
    for name, value in overrides.items():
        if value is REMOVE:
            del claims[name]
        else:
            claims[name] = value
    return claims


def sign(claims: dict[str, Any] | None = None, key: bytes = SECRET_KEY) -> str:
    """Sign the claims (default: valid EBS claims) with HS256."""
    return jwt.encode(claims or ebs_claims(), key, algorithm="HS256")


def sign_hs512(claims: dict[str, Any]) -> str:
    """Sign the claims with HS512 and the right secret, which the emulator rejects."""
    with warnings.catch_warnings():
        # PyJWT warns that a 32-byte key is short for HS512, which is beside the point.
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims, SECRET_KEY, algorithm="HS512")


def pubsub_headers(token: str | None = None) -> dict[str, str]:
    """Return valid pubsub headers, with `token` as the bearer JWT if given."""
    return {
        "Client-Id": TWITCH_ID,
        "Authorization": f"Bearer {token or sign()}",
    }


def broadcast_body(message: str = "hello", **overrides: Any) -> dict[str, Any]:
    """Return a valid broadcast body, changed by `overrides`."""
    body: dict[str, Any] = {
        "broadcaster_id": CHANNEL,
        "target": ["broadcast"],
        "message": message,
    }
    body.update(overrides)
    return body


def send(
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """POST a broadcast (default: a valid one) to the emulator's pubsub endpoint."""
    return requests.post(
        url + "/helix/extensions/pubsub",
        json=broadcast_body() if body is None else body,
        headers=pubsub_headers() if headers is None else headers,
        timeout=TIMEOUT,
    )


def recorded(url: str, broadcaster_id: str | None = CHANNEL) -> list[dict[str, Any]]:
    """Return the pubsub messages the emulator accepted."""
    params = {} if broadcaster_id is None else {"broadcaster_id": broadcaster_id}
    response = requests.get(url + "/emulator/pubsub", params=params, timeout=TIMEOUT)
    return response.json()


def stats(url: str) -> dict[str, dict[str, int]]:
    """Return the emulator's response counts."""
    return requests.get(url + "/emulator/stats", timeout=TIMEOUT).json()


def add_fault(url: str, **fault: Any) -> requests.Response:
    """Queue a fault on the emulator."""
    return requests.post(url + "/emulator/faults", json=fault, timeout=TIMEOUT)


def authorize(url: str, **overrides: str) -> requests.Response:
    """Call /oauth2/authorize with valid parameters, changed by `overrides`."""
    params = {
        "client_id": TWITCH_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid",
        "state": "0123456789abcdef0123456789abcdef",
    }
    params.update(overrides)
    return requests.get(
        url + "/oauth2/authorize",
        params=params,
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def redirect_query(response: requests.Response) -> dict[str, list[str]]:
    """Return the query parameters of a redirect's Location."""
    return parse_qs(urlsplit(response.headers["Location"]).query)


def issue_code(url: str, **overrides: str) -> str:
    """Run /oauth2/authorize and return the code from the redirect."""
    return redirect_query(authorize(url, **overrides))["code"][0]


def exchange(url: str, code: str, **overrides: str) -> requests.Response:
    """POST a valid authorization code exchange, changed by `overrides`."""
    form = {
        "client_id": TWITCH_ID,
        "client_secret": CLIENT_SECRET,
        "code": code,
        "grant_type": "authorization_code",
        "redirect_uri": REDIRECT_URI,
    }
    form.update(overrides)
    return requests.post(url + "/oauth2/token", data=form, timeout=TIMEOUT)


def userinfo(url: str, access_token: str) -> requests.Response:
    """Call /oauth2/userinfo with a bearer access token."""
    headers = {"Authorization": f"Bearer {access_token}"}
    return requests.get(url + "/oauth2/userinfo", headers=headers, timeout=TIMEOUT)


def log_in(url: str, **overrides: str) -> dict[str, Any]:
    """Run authorize and token, then return the token response JSON."""
    response = exchange(url, issue_code(url, **overrides))
    assert response.status_code == 200
    return response.json()


# --- Start-up ----------------------------------------------------------------------


def test_startup_missing_variable_names_it() -> None:
    env = server_environment()
    del env["ARGUS_TWITCH_ID"]
    result = subprocess.run(
        python_command(EMULATOR, "--port", str(free_port())),
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "ARGUS_TWITCH_ID" in result.stderr


def test_startup_import_has_no_side_effects(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("twitch_emulator", EMULATOR_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the class is created.
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    config = module.EmulatorConfig(TWITCH_ID, CLIENT_SECRET, (SECRET_KEY,))
    client = module.create_app(config).test_client()
    assert client.get("/emulator/health").text == "ok"


def test_startup_health_returns_ok(twitch: str) -> None:
    response = requests.get(twitch + "/emulator/health", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.text == "ok"


# --- Pubsub: accepted messages -----------------------------------------------------


def test_pubsub_valid_broadcast_returns_204(twitch: str) -> None:
    response = send(twitch, broadcast_body("first"))
    assert response.status_code == 204
    assert response.content == b""


def test_pubsub_valid_broadcast_is_recorded(twitch: str) -> None:
    before = time.time()
    send(twitch, broadcast_body("first"))
    records = recorded(twitch)
    assert [record["message"] for record in records] == ["first"]
    assert before - 1 <= records[0]["received_at"] <= time.time() + 1


def test_pubsub_records_keep_arrival_order(twitch: str) -> None:
    for message in ("one", "two", "three"):
        send(twitch, broadcast_body(message))
    assert [record["message"] for record in recorded(twitch)] == ["one", "two", "three"]


def test_pubsub_records_filter_by_channel(twitch: str) -> None:
    send(twitch, broadcast_body("to channel"))
    token = sign(ebs_claims(channel_id=OTHER_CHANNEL))
    body = broadcast_body("to other", broadcaster_id=OTHER_CHANNEL)
    send(twitch, body, pubsub_headers(token))
    assert [record["message"] for record in recorded(twitch)] == ["to channel"]
    assert [r["message"] for r in recorded(twitch, OTHER_CHANNEL)] == ["to other"]


def test_pubsub_records_without_filter_name_channel(twitch: str) -> None:
    send(twitch, broadcast_body("to channel"))
    token = sign(ebs_claims(channel_id=OTHER_CHANNEL))
    body = broadcast_body("to other", broadcaster_id=OTHER_CHANNEL)
    send(twitch, body, pubsub_headers(token))
    channels = [record["broadcaster_id"] for record in recorded(twitch, None)]
    assert channels == [CHANNEL, OTHER_CHANNEL]


def test_pubsub_star_permission_allows_broadcast(twitch: str) -> None:
    token = sign(ebs_claims(pubsub_perms={"send": ["*"]}))
    assert send(twitch, headers=pubsub_headers(token)).status_code == 204


def test_pubsub_second_secret_is_accepted(limited: str) -> None:
    old = send(limited, headers=pubsub_headers(sign(key=SECRET_KEY)))
    new = send(limited, headers=pubsub_headers(sign(key=OTHER_KEY)))
    assert old.status_code == 204
    assert new.status_code == 204


def test_pubsub_any_user_id_without_owner(limited: str) -> None:
    token = sign(ebs_claims(user_id="999"))
    assert send(limited, headers=pubsub_headers(token)).status_code == 204


# --- Pubsub: rejected requests -----------------------------------------------------


INVALID_AUTHORIZATION = {
    "missing header": None,
    "not bearer": f"Basic {sign()}",
    "garbled": "Bearer not.a.jwt",
    "wrong secret": f"Bearer {sign(key=OTHER_KEY)}",
    "alg none": "Bearer " + jwt.encode(ebs_claims(), None, algorithm="none"),
    "hs512": f"Bearer {sign_hs512(ebs_claims())}",
    "expired": f"Bearer {sign(ebs_claims(exp=int(time.time()) - 10))}",
    "no exp": f"Bearer {sign(ebs_claims(exp=REMOVE))}",
}


@pytest.mark.parametrize(
    "authorization", INVALID_AUTHORIZATION.values(), ids=INVALID_AUTHORIZATION.keys()
)
def test_pubsub_invalid_jwt_returns_401(twitch: str, authorization: str | None) -> None:
    headers = {"Client-Id": TWITCH_ID}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = send(twitch, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized"
    assert response.json()["status"] == 401
    assert recorded(twitch) == []


@pytest.mark.parametrize("client_id", [None, "wrongclientid"], ids=["missing", "wrong"])
def test_pubsub_bad_client_id_returns_401(twitch: str, client_id: str | None) -> None:
    headers = pubsub_headers()
    del headers["Client-Id"]
    if client_id is not None:
        headers["Client-Id"] = client_id
    response = send(twitch, headers=headers)
    assert response.status_code == 401
    assert response.json()["status"] == 401


def test_pubsub_wrong_channel_returns_403(twitch: str) -> None:
    token = sign(ebs_claims(channel_id=OTHER_CHANNEL))
    response = send(twitch, headers=pubsub_headers(token))
    assert response.status_code == 403
    assert response.json() == {
        "error": "Forbidden",
        "status": 403,
        "message": "Error (403): Wrong channel requested",
    }


@pytest.mark.parametrize(
    "permissions",
    [{"send": ["whisper-*"]}, {"listen": ["broadcast"]}, {"send": []}, REMOVE],
    ids=["whisper only", "no send list", "empty send", "no pubsub_perms"],
)
def test_pubsub_missing_broadcast_perm_returns_403(
    twitch: str, permissions: Any
) -> None:
    token = sign(ebs_claims(pubsub_perms=permissions))
    response = send(twitch, headers=pubsub_headers(token))
    assert response.status_code == 403
    assert response.json()["message"] == "Error (403): Wrong channel requested"


def test_pubsub_perms_array_returns_403(twitch: str) -> None:
    token = sign(ebs_claims(pubsub_perms=["broadcast"]))
    response = send(twitch, headers=pubsub_headers(token))
    assert response.status_code == 403
    assert response.json()["message"] == "Error (403): JWT could not be verified"


def test_pubsub_other_user_id_returns_403(twitch: str) -> None:
    token = sign(ebs_claims(user_id="999"))
    response = send(twitch, headers=pubsub_headers(token))
    assert response.status_code == 403
    assert recorded(twitch) == []


def test_pubsub_role_not_external_returns_403(twitch: str) -> None:
    token = sign(ebs_claims(role="broadcaster"))
    assert send(twitch, headers=pubsub_headers(token)).status_code == 403


INVALID_BODIES = {
    "array": ["broadcast"],
    "no broadcaster_id": broadcast_body(broadcaster_id=None),
    "numeric broadcaster_id": broadcast_body(broadcaster_id=int(CHANNEL)),
    "empty broadcaster_id": broadcast_body(broadcaster_id=""),
    "no target": {"broadcaster_id": CHANNEL, "message": "hello"},
    "target string": broadcast_body(target="broadcast"),
    "target global": broadcast_body(target=["global"]),
    "target whisper": broadcast_body(target=["whisper-U123"]),
    "two targets": broadcast_body(target=["broadcast", "global"]),
    "global flag": broadcast_body(is_global_broadcast=True),
    "no message": {"broadcaster_id": CHANNEL, "target": ["broadcast"]},
    "numeric message": broadcast_body(message=42),
    "lone surrogate": broadcast_body(message="\ud800"),
}


@pytest.mark.parametrize("body", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_pubsub_invalid_body_returns_400(twitch: str, body: Any) -> None:
    response = send(twitch, body)
    assert response.status_code == 400
    assert response.json()["error"] == "Bad Request"
    assert response.json()["status"] == 400


def test_pubsub_invalid_json_returns_400(twitch: str) -> None:
    headers = pubsub_headers() | {"Content-Type": "application/json"}
    response = requests.post(
        twitch + "/helix/extensions/pubsub",
        data=b"{not json",
        headers=headers,
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    assert response.json()["status"] == 400


def test_pubsub_non_json_content_type_returns_400(twitch: str) -> None:
    headers = pubsub_headers() | {"Content-Type": "text/plain"}
    response = requests.post(
        twitch + "/helix/extensions/pubsub",
        data=json.dumps(broadcast_body()),
        headers=headers,
        timeout=TIMEOUT,
    )
    assert response.status_code == 400


def test_pubsub_trailing_slash_returns_403(twitch: str) -> None:
    response = requests.post(
        twitch + "/helix/extensions/pubsub/",
        json=broadcast_body(),
        headers=pubsub_headers(),
        timeout=TIMEOUT,
    )
    assert response.status_code == 403
    assert response.json()["message"] == "Invalid oAuth token"


# --- Pubsub: message size ----------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    ["a" * 5120, "é" * 2560, "€" * 1706 + "ab", "😀" * 1280],
    ids=["ascii", "two-byte", "three-byte", "four-byte"],
)
def test_pubsub_message_of_5120_bytes_returns_204(twitch: str, message: str) -> None:
    assert len(message.encode("utf-8")) == 5120
    assert send(twitch, broadcast_body(message)).status_code == 204


@pytest.mark.parametrize(
    "message",
    ["a" * 5121, "é" * 2560 + "a", "€" * 1707, "😀" * 1280 + "a"],
    ids=["ascii", "two-byte", "three-byte", "four-byte"],
)
def test_pubsub_message_of_5121_bytes_returns_422(twitch: str, message: str) -> None:
    assert len(message.encode("utf-8")) == 5121
    response = send(twitch, broadcast_body(message))
    assert response.status_code == 422
    assert response.json()["status"] == 422
    assert recorded(twitch) == []


# --- Pubsub: rate limit ------------------------------------------------------------


def test_rate_limit_headers_on_204(twitch: str) -> None:
    response = send(twitch)
    assert response.headers["Ratelimit-Limit"] == "100"
    assert response.headers["Ratelimit-Remaining"] == "99"
    reset = int(response.headers["Ratelimit-Reset"])
    assert time.time() <= reset <= time.time() + 3


def test_rate_limit_rejections_skip_limiter(twitch: str) -> None:
    response = send(twitch, headers=pubsub_headers(sign(key=OTHER_KEY)))
    assert "Ratelimit-Remaining" not in response.headers


def test_rate_limit_empty_bucket_returns_429(limited: str) -> None:
    statuses = [send(limited).status_code for _ in range(LIMITED_CAPACITY + 1)]
    assert statuses == [204] * LIMITED_CAPACITY + [429]


def test_rate_limit_429_has_headers(limited: str) -> None:
    for _ in range(LIMITED_CAPACITY):
        send(limited)
    response = send(limited)
    assert response.status_code == 429
    assert response.json()["status"] == 429
    assert response.headers["Ratelimit-Limit"] == str(LIMITED_CAPACITY)
    assert response.headers["Ratelimit-Remaining"] == "0"
    full_after = LIMITED_CAPACITY / LIMITED_REFILL_PER_SECOND
    reset = int(response.headers["Ratelimit-Reset"])
    assert time.time() < reset <= time.time() + full_after + 1


def test_rate_limit_429_is_not_recorded(limited: str) -> None:
    for _ in range(LIMITED_CAPACITY + 1):
        send(limited)
    assert len(recorded(limited)) == LIMITED_CAPACITY


def test_rate_limit_bucket_refills(limited: str) -> None:
    for _ in range(LIMITED_CAPACITY + 1):
        send(limited)
    time.sleep(1.2 / LIMITED_REFILL_PER_SECOND)
    assert send(limited).status_code == 204


def test_rate_limit_buckets_are_per_channel(limited: str) -> None:
    for _ in range(LIMITED_CAPACITY + 1):
        send(limited)
    token = sign(ebs_claims(channel_id=OTHER_CHANNEL))
    body = broadcast_body(broadcaster_id=OTHER_CHANNEL)
    assert send(limited, body, pubsub_headers(token)).status_code == 204


# --- Faults ------------------------------------------------------------------------


def test_fault_503_applies_count_times(twitch: str) -> None:
    add_fault(twitch, status=503, count=2)
    statuses = [send(twitch).status_code for _ in range(3)]
    assert statuses == [503, 503, 204]


def test_fault_503_is_not_recorded(twitch: str) -> None:
    add_fault(twitch, status=503, count=1)
    send(twitch, broadcast_body("lost"))
    assert recorded(twitch) == []


def test_fault_503_has_helix_error_body(twitch: str) -> None:
    add_fault(twitch, status=503)
    body = send(twitch).json()
    assert body["status"] == 503
    assert body["error"] == "Service Unavailable"


def test_fault_429_has_rate_limit_headers(twitch: str) -> None:
    add_fault(twitch, status=429)
    response = send(twitch)
    assert response.status_code == 429
    assert response.headers["Ratelimit-Limit"] == "100"
    assert response.headers["Ratelimit-Remaining"] == "0"
    assert int(response.headers["Ratelimit-Reset"]) >= int(time.time())


def test_fault_delay_then_processes_normally(twitch: str) -> None:
    add_fault(twitch, delay_ms=300)
    started = time.monotonic()
    response = send(twitch, broadcast_body("late"))
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 204
    assert [record["message"] for record in recorded(twitch)] == ["late"]


def test_fault_post_returns_queue(twitch: str) -> None:
    response = add_fault(twitch, status=500, count=2)
    assert response.status_code == 200
    assert response.json() == [
        {"endpoint": "pubsub", "status": 500, "delay_ms": 0, "count": 2}
    ]


def test_fault_queue_counts_down(twitch: str) -> None:
    add_fault(twitch, status=500, count=2)
    send(twitch)
    queue = requests.get(twitch + "/emulator/faults", timeout=TIMEOUT).json()
    assert [fault["count"] for fault in queue] == [1]


def test_fault_other_endpoint_leaves_pubsub(twitch: str) -> None:
    add_fault(twitch, endpoint="oauth_token", status=500)
    assert send(twitch).status_code == 204


INVALID_FAULTS = {
    "not an object": [503],
    "no status or delay": {"count": 2},
    "status 200": {"status": 200},
    "status string": {"status": "503"},
    "count 0": {"status": 503, "count": 0},
    "count true": {"status": 503, "count": True},
    "negative delay": {"delay_ms": -1},
    "unknown endpoint": {"endpoint": "oauth_authorize", "status": 500},
    "unknown field": {"status": 503, "times": 2},
}


@pytest.mark.parametrize("fault", INVALID_FAULTS.values(), ids=INVALID_FAULTS.keys())
def test_fault_invalid_request_returns_400(twitch: str, fault: Any) -> None:
    response = requests.post(twitch + "/emulator/faults", json=fault, timeout=TIMEOUT)
    assert response.status_code == 400
    assert requests.get(twitch + "/emulator/faults", timeout=TIMEOUT).json() == []


def test_fault_non_json_returns_400(twitch: str) -> None:
    response = requests.post(
        twitch + "/emulator/faults", data=b"status=503", timeout=TIMEOUT
    )
    assert response.status_code == 400


# --- Stats and reset ---------------------------------------------------------------


def test_stats_count_pubsub_statuses(twitch: str) -> None:
    send(twitch)
    send(twitch)
    send(twitch, headers={"Client-Id": TWITCH_ID})
    add_fault(twitch, status=503)
    send(twitch)
    assert stats(twitch)["pubsub"] == {"204": 2, "401": 1, "503": 1}


def test_stats_count_oauth_endpoints(twitch: str) -> None:
    access_token = log_in(twitch)["access_token"]
    userinfo(twitch, access_token)
    userinfo(twitch, "unknown")
    counts = stats(twitch)
    assert counts["oauth_authorize"] == {"302": 1}
    assert counts["oauth_token"] == {"200": 1}
    assert counts["userinfo"] == {"200": 1, "401": 1}


def test_reset_clears_records_stats_faults(twitch: str) -> None:
    send(twitch)
    add_fault(twitch, status=503)
    response = requests.post(twitch + "/emulator/reset", timeout=TIMEOUT)
    assert response.status_code == 204
    assert recorded(twitch) == []
    assert stats(twitch)["pubsub"] == {}
    assert requests.get(twitch + "/emulator/faults", timeout=TIMEOUT).json() == []


def test_reset_refills_buckets(limited: str) -> None:
    for _ in range(LIMITED_CAPACITY + 1):
        send(limited)
    requests.post(limited + "/emulator/reset", timeout=TIMEOUT)
    assert send(limited).status_code == 204


# --- OAuth: authorize --------------------------------------------------------------


def test_authorize_redirects_with_code(twitch: str) -> None:
    response = authorize(twitch, scope="openid user:read:email", state="s1")
    query = redirect_query(response)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(REDIRECT_URI + "?")
    assert len(query["code"][0]) >= 20
    assert query["state"] == ["s1"]
    assert query["scope"] == ["openid user:read:email"]


def test_authorize_separates_scopes_with_plus(twitch: str) -> None:
    response = authorize(twitch, scope="channel:read:polls openid")
    assert "scope=channel%3Aread%3Apolls+openid" in response.headers["Location"]


def test_authorize_codes_are_fresh(twitch: str) -> None:
    assert issue_code(twitch) != issue_code(twitch)


def test_authorize_deny_redirects_with_error(twitch: str) -> None:
    response = authorize(twitch, emulator_deny="1", state="s2")
    query = redirect_query(response)
    assert response.status_code == 302
    assert query["error"] == ["access_denied"]
    assert query["error_description"] == ["The user denied you access"]
    assert query["state"] == ["s2"]
    assert "code" not in query


def test_authorize_keeps_redirect_uri_query(twitch: str) -> None:
    response = authorize(twitch, redirect_uri=REDIRECT_URI + "?source=test")
    query = redirect_query(response)
    assert query["source"] == ["test"]
    assert "code" in query


INVALID_AUTHORIZE = {
    "wrong client_id": {"client_id": "wrongclientid"},
    "no redirect_uri": {"redirect_uri": ""},
    "relative redirect_uri": {"redirect_uri": "/oauth_token"},
    "response_type token": {"response_type": "token"},
    "claims not json": {"claims": "{userinfo"},
}


@pytest.mark.parametrize(
    "overrides", INVALID_AUTHORIZE.values(), ids=INVALID_AUTHORIZE.keys()
)
def test_authorize_invalid_request_returns_400(
    twitch: str, overrides: dict[str, str]
) -> None:
    response = authorize(twitch, **overrides)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")


# --- OAuth: token ------------------------------------------------------------------


def test_token_returns_twitch_shape(twitch: str) -> None:
    body = log_in(twitch, scope="openid user:read:email")
    assert isinstance(body["access_token"], str)
    assert isinstance(body["refresh_token"], str)
    assert isinstance(body["expires_in"], int)
    assert body["scope"] == ["openid", "user:read:email"]
    assert body["token_type"] == "bearer"


def test_token_id_token_only_with_openid(twitch: str) -> None:
    with_openid = log_in(twitch, scope="openid")
    without_openid = log_in(twitch, scope="user:read:email")
    assert len(with_openid["id_token"].split(".")) == 3
    assert "id_token" not in without_openid


def test_token_code_reuse_returns_400(twitch: str) -> None:
    code = issue_code(twitch)
    first = exchange(twitch, code)
    second = exchange(twitch, code)
    assert first.status_code == 200
    assert second.status_code == 400
    assert second.json() == {"status": 400, "message": "Invalid authorization code"}


def test_token_unknown_code_returns_400(twitch: str) -> None:
    response = exchange(twitch, "unknowncode")
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid authorization code"


def test_token_bad_secret_returns_403(twitch: str) -> None:
    response = exchange(twitch, issue_code(twitch), client_secret="wrong")
    assert response.status_code == 403
    assert response.json() == {"status": 403, "message": "invalid client secret"}


def test_token_bad_client_id_returns_400(twitch: str) -> None:
    response = exchange(twitch, issue_code(twitch), client_id="wrongclientid")
    assert response.status_code == 400
    assert response.json() == {"status": 400, "message": "invalid client"}


def test_token_other_redirect_uri_returns_400(twitch: str) -> None:
    code = issue_code(twitch)
    response = exchange(twitch, code, redirect_uri="http://127.0.0.1:9/other")
    assert response.status_code == 400
    assert "redirect_uri does not match" in response.json()["message"]


def test_token_wrong_grant_type_returns_400(twitch: str) -> None:
    response = exchange(twitch, issue_code(twitch), grant_type="client_credentials")
    assert response.status_code == 400
    assert response.json()["status"] == 400


def test_token_get_returns_404(twitch: str) -> None:
    response = requests.get(twitch + "/oauth2/token", timeout=TIMEOUT)
    assert response.status_code == 404


def test_token_fault_500(twitch: str) -> None:
    add_fault(twitch, endpoint="oauth_token", status=500)
    response = exchange(twitch, issue_code(twitch))
    assert response.status_code == 500
    assert response.json()["status"] == 500


def test_token_fault_delay(twitch: str) -> None:
    add_fault(twitch, endpoint="oauth_token", delay_ms=300)
    code = issue_code(twitch)
    started = time.monotonic()
    response = exchange(twitch, code)
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200


def test_token_delay_option(limited: str) -> None:
    code = issue_code(limited)
    started = time.monotonic()
    response = exchange(limited, code)
    assert time.monotonic() - started >= LIMITED_TOKEN_DELAY_MS / 1000
    assert response.status_code == 200


def test_token_expired_code_returns_400(limited: str) -> None:
    code = issue_code(limited)
    time.sleep(LIMITED_CODE_LIFETIME_SECONDS + 0.2)
    response = exchange(limited, code)
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid authorization code"


# --- OAuth: userinfo ---------------------------------------------------------------


def test_userinfo_without_claims_has_defaults_only(twitch: str) -> None:
    access_token = log_in(twitch)["access_token"]
    response = userinfo(twitch, access_token)
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"aud", "exp", "iat", "iss", "sub"}
    assert body["aud"] == TWITCH_ID
    assert body["iss"] == "https://id.twitch.tv/oauth2"
    assert body["sub"] == DEFAULT_USER_ID


def test_userinfo_with_claims_adds_name_and_picture(twitch: str) -> None:
    claims = json.dumps({"userinfo": {"preferred_username": None, "picture": None}})
    access_token = log_in(twitch, claims=claims)["access_token"]
    body = userinfo(twitch, access_token).json()
    assert body["preferred_username"] == "EmulatedStreamer"
    assert body["picture"].startswith("https://")


def test_userinfo_with_picture_claim_only(twitch: str) -> None:
    claims = json.dumps({"userinfo": {"picture": None}})
    access_token = log_in(twitch, claims=claims)["access_token"]
    body = userinfo(twitch, access_token).json()
    assert "picture" in body
    assert "preferred_username" not in body


def test_userinfo_per_request_user_override(twitch: str) -> None:
    claims = json.dumps({"userinfo": {"preferred_username": None, "picture": None}})
    access_token = log_in(
        twitch,
        claims=claims,
        emulator_user_id="555",
        emulator_username="OtherStreamer",
        emulator_picture="https://example.invalid/p.png",
    )["access_token"]
    body = userinfo(twitch, access_token).json()
    assert body["sub"] == "555"
    assert body["preferred_username"] == "OtherStreamer"
    assert body["picture"] == "https://example.invalid/p.png"


@pytest.mark.parametrize("access_token", ["unknown", ""], ids=["unknown", "empty"])
def test_userinfo_invalid_token_returns_401(twitch: str, access_token: str) -> None:
    response = userinfo(twitch, access_token)
    assert response.status_code == 401
    assert response.json() == {"status": 401, "message": "invalid access token"}


def test_userinfo_missing_header_returns_401(twitch: str) -> None:
    response = requests.get(twitch + "/oauth2/userinfo", timeout=TIMEOUT)
    assert response.status_code == 401


def test_userinfo_fault_503(twitch: str) -> None:
    access_token = log_in(twitch)["access_token"]
    add_fault(twitch, endpoint="userinfo", status=503)
    assert userinfo(twitch, access_token).status_code == 503
    assert userinfo(twitch, access_token).status_code == 200
