"""HTTP fuzz of every endpoint against a real two-worker gunicorn service.

Requests are drawn from a seeded generator: random methods, paths, query
strings, headers (garbage and oddly signed extension JWTs included), JSON shapes,
text encodings and body sizes. No response may be a 5xx, and afterwards the
service must still be healthy and broadcast a normal run.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
import requests

from argus.broadcast.framing import join_parts
from argus.links import LinkRegistry
from argus.store import open_store
from tests import support
from tests.conftest import emulator_messages
from tests.conftest import publish_sample_mappings

SEED = 20_261_204
REQUEST_COUNT = 2_400
THREADS = 4
BODY_LIMIT = 64 * 1024
EXTENSION_KEY = base64.b64decode(support.EXTENSION_SECRET)
FUZZ_CHANNEL = "5300000001"
CHECK_CHANNEL = "5300000002"
# High enough that the fuzz never meets them, so that the limiter code runs
# on every request without returning 429.
GENEROUS_LIMITS = ",".join(
    f"{rule}=1000000/1"
    for rule in (
        "run_info.token",
        "run_info.address",
        "get_argus_token.state",
        "get_argus_token.address",
        "check_argus_token.token",
        "check_argus_token.address",
        "oauth_token.address",
    )
)

ENDPOINTS = [
    "/run_info",
    "/get_argus_token",
    "/check_argus_token",
    "/oauth_token",
    "/check_login",
    "/get_streamer_run_data",
    "/dashboard_run_data",
    "/auth_success.html",
    "/auth_fail.html",
    "/healthz",
    "/metrics",
]
ODD_PATHS = [
    "/",
    "/run_info/",
    "/RUN_INFO",
    "/run_info%00",
    "/..%2f..%2fetc%2fpasswd",
    "/auth_success.html/../auth_fail.html",
    "/%ff%fe",
    "/" + "a" * 3000,
    "/static/x.js",
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "FUZZ"]
SECTIONS = [
    "boonData",
    "weaponData",
    "familiarData",
    "extraData",
    "elementalData",
    "pinData",
    "vowData",
    "arcanaData",
]
ODD_STRINGS = [
    "",
    " ",
    "NOBOONS",
    "Common;;ZeusWeaponBoon",
    "Fire:<img src=x onerror=alert(1)>",
    "__proto__",
    "constructor",
    "\x00",
    "\ud800",
    "\ufeff",
    "😀" * 50,
    "9" * 400,
    "%s%s%n",
    "../../etc/passwd",
    "' OR 1=1 --",
    "${jndi:ldap://127.0.0.1/x}",
    "\r\nSet-Cookie: x=1",
]
VALID_SECTION_TEXT = {
    "boonData": "Common;;ApolloManaBoon Rare;;AphroditeSpecialBoon Duo;;ZeusWeaponBoon",
    "weaponData": "Rare;;DaggerBlockAspect",
    "familiarData": (
        "8;;LastStandFamiliar 2;;LastStandFamiliar 3;;FamiliarCatResourceBonus"
    ),
    "extraData": "Epic;;ForceZeusBoonKeepsake Common;;SpellSummonTrait",
    "elementalData": "Fire:1;;Water:0;;Earth:3;;Air:0;;Aether:0",
    "pinData": "RandomStatusBoon;;AresExCastBoon",
    "vowData": "4;;BossDifficultyShrineUpgrade 1;;MinibossCountShrineUpgrade",
    "arcanaData": "3;;ChannelSlowMetaUpgrade 1;;CastDamageMetaUpgrade",
}
PROTOCOL_ANSWERS = {"ok", "bad_argus_token", "FAIL", "token_not_ok", "LOGIN_OK"}
EXPECTED_OUTCOMES = [
    "/run_info 200 ok",
    "/run_info 200 bad_argus_token",
    "/run_info 400",
    "/run_info 405",
    "/get_argus_token 200 FAIL",
    "/get_argus_token 400",
    "/check_argus_token 200 token_not_ok",
    "/oauth_token 302",
    "/check_login 200 FAIL",
    "/check_login 204",
    "/get_streamer_run_data 401",
    "/dashboard_run_data 200",
    "/auth_success.html 200",
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-16",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "multipart/form-data",
    "application/octet-stream",
    "garbage/;;;",
    "",
]


def odd_string(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return rng.choice(ODD_STRINGS)
    length = rng.choice([1, 5, 43, 256, 257, 2000])
    return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(length))


def json_value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["null", "bool", "int", "float", "string"]
    if depth < 4:
        kinds += ["list", "object"]
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, -1, 1, 2, 2**31, 2**63, -(2**70), 10**300])
    if kind == "float":
        return rng.choice([0.5, -0.0, 1e308, 2.0, 1e-320])
    if kind == "string":
        return odd_string(rng)
    if kind == "list":
        return [json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = SECTIONS + ["argusToken", "state", "runData", "argusProtocolVersion", "x"]
    return {
        rng.choice(keys): json_value(rng, depth + 1) for _ in range(rng.randrange(5))
    }


def run_data(rng: random.Random) -> Any:
    if rng.random() < 0.1:
        return json_value(rng)
    data = {}
    for name in SECTIONS:
        roll = rng.random()
        if roll < 0.1:
            continue
        if roll < 0.15:
            data[name] = json_value(rng)
        elif roll < 0.25:
            data[name] = " ".join(
                ["Common;;ZeusWeaponBoon"] * rng.choice([1, 200, 201])
            )
        elif roll < 0.65:
            data[name] = VALID_SECTION_TEXT[name]
        else:
            data[name] = odd_string(rng)
    return data


def token_value(rng: random.Random, token: str) -> Any:
    if rng.random() < 0.6:
        return token
    return rng.choice([token + "x", token.upper(), json_value(rng), odd_string(rng)])


def extension_token(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.3:
        return odd_string(rng)
    if roll < 0.4:
        return ".".join(
            base64.urlsafe_b64encode(rng.randbytes(rng.randrange(1, 60))).decode()
            for _ in range(3)
        )
    claims: dict[str, Any] = {"exp": int(time.time()) + rng.choice([-3600, 60])}
    claims["channel_id"] = rng.choice(
        [FUZZ_CHANNEL, CHECK_CHANNEL, 5300000001, "١٢٣", None, {"a": 1}, "0" * 500]
    )
    if rng.random() < 0.2:
        del claims["exp"]
    key = EXTENSION_KEY if rng.random() < 0.8 else b"wrong-key-wrong-key-wrong-key-00"
    algorithm = rng.choice(["HS256", "HS256", "HS384"])
    return jwt.encode(claims, key, algorithm=algorithm)


def body_for(rng: random.Random, path: str, token: str) -> bytes | None:
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.15:
        return rng.randbytes(rng.choice([1, 100, 5000]))
    if roll < 0.2:
        return b" " * rng.choice([BODY_LIMIT - 10, BODY_LIMIT, BODY_LIMIT + 1, 200_000])
    if roll < 0.25:
        return b"[" * 20_000 + b"]" * 20_000
    if path == "/run_info" or roll < 0.5:
        value: Any = {
            "argusProtocolVersion": rng.choice(
                ["1", "2", "2", 2, None] if rng.random() < 0.8 else ["x", [], 1.5, True]
            ),
            "argusToken": token_value(rng, token),
            "runData": run_data(rng),
        }
    elif path == "/get_argus_token" or roll < 0.7:
        value = {
            "argusProtocolVersion": rng.choice(["1", "2", True, None, "3"]),
            "state": rng.choice(["0" * 32, "a" * 32, odd_string(rng), 12]),
        }
    else:
        value = json_value(rng)
    text = json.dumps(value, ensure_ascii=rng.random() < 0.5)
    encoding = rng.choice(
        ["utf-8", "utf-8", "utf-16", "utf-32", "utf-8-sig", "latin-1"]
    )
    return text.encode(encoding, "surrogatepass" if "utf" in encoding else "replace")


def query_for(rng: random.Random, token: str) -> str:
    if rng.random() < 0.1:
        return rng.choice(["%ff%fe=%00", "a=%", "&&&=", "x=" + "y" * 3000, "=;"])
    names = ["argus_token", "state", "code", "error", "scope", "x"]
    query = []
    for _ in range(rng.randrange(4)):
        name = rng.choice(names)
        if name == "argus_token":
            value = rng.choice([token, odd_string(rng)])
        elif name == "state":
            value = rng.choice(["0" * 32, "F" * 32, odd_string(rng)])
        else:
            value = odd_string(rng)
        # Lone surrogates become the bytes of invalid UTF-8 in the URL.
        query.append((name, value.encode("utf-8", "surrogatepass")))
    return urlencode(query)


def headers_for(rng: random.Random) -> dict[str, str]:
    headers = {}
    if rng.random() < 0.5:
        headers["x-extension-jwt"] = extension_token(rng)
    if rng.random() < 0.4:
        headers["Origin"] = rng.choice(
            [
                f"https://{support.TWITCH_ID}.ext-twitch.tv",
                "https://evil.example",
                "null",
                odd_string(rng),
            ]
        )
    if rng.random() < 0.5:
        headers["Content-Type"] = rng.choice(CONTENT_TYPES)
    if rng.random() < 0.2:
        headers["Fly-Client-IP"] = rng.choice(["203.0.113.5", "::1", odd_string(rng)])
    if rng.random() < 0.2:
        headers["Access-Control-Request-Headers"] = rng.choice(
            ["x-extension-jwt", "*", odd_string(rng)]
        )
    if rng.random() < 0.1:
        headers["Accept-Encoding"] = rng.choice(["gzip", "br, zstd", "*;q=0"])
    return {name: header_value(value) for name, value in headers.items()}


def header_value(text: str) -> str:
    """Make text sendable as a header value, as its UTF-8 bytes read as Latin-1.

    requests rejects line breaks and leading whitespace in header values.
    """
    value = text.encode("utf-8", "replace").decode("latin-1")
    return value.replace("\r", " ").replace("\n", " ").lstrip(" \t")


def build_request(index: int, token: str) -> dict[str, Any]:
    rng = random.Random(SEED * 100_000 + index)
    path = rng.choice(ENDPOINTS) if rng.random() < 0.9 else rng.choice(ODD_PATHS)
    method = rng.choice(METHODS)
    if path in ("/run_info", "/get_argus_token") and rng.random() < 0.8:
        method = "POST"
    return {
        "method": method,
        "path": path,
        "params": query_for(rng, token),
        "headers": headers_for(rng),
        "data": body_for(rng, path, token),
    }


@pytest.fixture(scope="module")
def fuzz_service(emulator, tmp_path_factory):
    directory = tmp_path_factory.mktemp("fuzz")
    store_url = f"sqlite:///{directory / 'store.sqlite3'}"
    publish_sample_mappings(store_url)
    links = LinkRegistry(open_store(store_url))
    env = support.server_environment(
        ARGUS_STORE=store_url,
        ARGUS_TWITCH_API_URL=emulator.url,
        ARGUS_TWITCH_AUTH_URL=emulator.url,
        ARGUS_STATE_DIR=str(directory / "state"),
        ARGUS_RATE_LIMITS=GENEROUS_LIMITS,
        ARGUS_LOG_LEVEL="warning",
        GUNICORN_CMD_ARGS="--access-logfile=/dev/null",
    )
    port = support.free_port()
    server = support.ServerProcess(
        support.python_command(
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "app:app",
        ),
        port,
        env,
        ready_path="/healthz",
        log_path=directory / "service.log",
    )
    server.fuzz_token = links.link(FUZZ_CHANNEL, username="fuzzed")
    server.check_token = links.link(CHECK_CHANNEL, username="checked")
    yield server
    server.stop()


def send(
    service, request: dict[str, Any], session: requests.Session
) -> tuple[str, str | None]:
    """Send one fuzz request; return its outcome and a description if it is wrong.

    The outcome is the path and status code, followed by the body when it is
    a protocol word such as `ok` or `FAIL`, so that the test can tell which
    code paths ran.
    """
    try:
        response = session.request(
            request["method"],
            service.url + request["path"],
            params=request["params"],
            headers=request["headers"],
            data=request["data"],
            timeout=10,
            allow_redirects=False,
        )
    except requests.ConnectionError as error:
        # The server may close the connection while a body over the limit is
        # still being sent, so the client never reads the 413.
        if request["data"] is not None and len(request["data"]) >= BODY_LIMIT:
            return "closed", None
        return "failed", (
            f"{request['method']} {request['path']}: connection failed: {error}"
        )
    outcome = f"{request['path']} {response.status_code}"
    if response.text in PROTOCOL_ANSWERS:
        outcome += f" {response.text}"
    if response.status_code >= 500:
        return outcome, (
            f"{request['method']} {request['path']} {request['params']!r:.200} "
            f"-> {response.status_code} {response.text[:200]!r}"
        )
    return outcome, None


# HS384 tokens signed with the 32-byte test key are meant to be rejected.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_fuzz_never_5xx(fuzz_service, emulator):
    token = fuzz_service.fuzz_token
    requests_to_send = [build_request(index, token) for index in range(REQUEST_COUNT)]
    chunks = [requests_to_send[start::THREADS] for start in range(THREADS)]

    def run(chunk: list[dict[str, Any]]) -> tuple[Counter, list[str]]:
        outcomes: Counter = Counter()
        found = []
        session = requests.Session()
        for request in chunk:
            outcome, problem = send(fuzz_service, request, session)
            outcomes[outcome] += 1
            if problem is not None:
                found.append(problem)
            if request["data"] is not None and len(request["data"]) >= BODY_LIMIT:
                # gunicorn 27 drains at most 64 KiB of a body the app did not
                # read. Past that it closes the connection after responding
                # with keep-alive, so the next request must not reuse it.
                session.close()
                session = requests.Session()
        session.close()
        return outcomes, found

    outcomes: Counter = Counter()
    problems = []
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for chunk_outcomes, found in pool.map(run, chunks):
            outcomes.update(chunk_outcomes)
            problems += found
    log = fuzz_service.read_log()

    assert len(requests_to_send) >= 2_000
    assert problems == []
    # The generator must keep reaching the code behind each kind of response.
    for outcome in EXPECTED_OUTCOMES:
        assert outcomes[outcome] >= 2, outcome
    assert fuzz_service.process.poll() is None
    assert "Traceback" not in log
    assert "unexpected error" not in log


def wait_for_run(emulator, channel: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = emulator_messages(emulator, channel)
        if messages and len(messages) >= int(messages[0].split("*")[3]):
            return json.loads(join_parts(messages[: int(messages[0].split("*")[3])]))
        time.sleep(0.05)
    raise AssertionError(f"no complete broadcast for channel {channel}")


def test_healthy_after_fuzz(fuzz_service, emulator):
    body = {
        "argusProtocolVersion": "2",
        "argusToken": fuzz_service.check_token,
        "runData": {
            "boonData": "Epic;;ZeusWeaponBoon",
            "weaponData": "Rare;;DaggerBlockAspect",
        },
    }

    health = requests.get(fuzz_service.url + "/healthz", timeout=5)
    answer = requests.post(fuzz_service.url + "/run_info", json=body, timeout=10)
    check = requests.get(
        fuzz_service.url + "/check_argus_token",
        params={"argus_token": fuzz_service.check_token},
        timeout=5,
    )
    run = wait_for_run(emulator, CHECK_CHANNEL)

    assert health.status_code == 200
    assert answer.status_code == 200
    assert answer.text == "ok"
    assert check.text == "token_ok"
    assert run["boonData"]["weaponBoon"]["codeName"] == "ZeusWeaponBoon"
    assert run["boonData"]["weaponBoon"]["rarity"] == "Epic"
    assert run["weaponData"]["codeName"] == "DaggerBlockAspect"
    assert run["totalRunItems"] == "2"
