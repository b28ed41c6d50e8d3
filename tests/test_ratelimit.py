"""Rate limits: bucket arithmetic, settings, responses and sharing across workers."""

from __future__ import annotations

import logging
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from argus import create_app
from argus.config import DEFAULT_RATE_LIMITS
from argus.config import ConfigError
from argus.config import RateLimitRule
from argus.config import load_settings
from argus.links import LinkRegistry
from argus.logs import configure_logging
from argus.ratelimit import RateLimiter
from argus.ratelimit import address_key
from argus.ratelimit import hash_key
from argus.store import open_store
from tests import support
from tests.conftest import publish_sample_mappings

RUN_DATA = {"boonData": "Common;;ApolloManaBoon", "weaponData": "NOWEAPONS"}


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def limiter_for(tmp_path, clock, *rules: RateLimitRule) -> RateLimiter:
    return RateLimiter(tmp_path / "limits.sqlite3", rules, clock=clock)


# --- bucket arithmetic -------------------------------------------------------


def test_bucket_allows_burst_then_denies(tmp_path, clock):
    limiter = limiter_for(tmp_path, clock, RateLimitRule("r", 3, 60))

    decisions = [limiter.hit("r", "k") for _ in range(4)]

    assert [decision.allowed for decision in decisions] == [True, True, True, False]
    assert decisions[3].retry_after == 20


def test_bucket_refills_at_rate(tmp_path, clock):
    limiter = limiter_for(tmp_path, clock, RateLimitRule("r", 3, 60))
    for _ in range(3):
        limiter.hit("r", "k")

    clock.now += 19
    early = limiter.hit("r", "k")
    clock.now += 1
    on_time = limiter.hit("r", "k")
    again = limiter.hit("r", "k")

    assert not early.allowed
    assert early.retry_after == 1
    assert on_time.allowed
    assert not again.allowed


def test_bucket_refill_capped_at_count(tmp_path, clock):
    limiter = limiter_for(tmp_path, clock, RateLimitRule("r", 2, 10))
    limiter.hit("r", "k")

    clock.now += 10_000
    decisions = [limiter.hit("r", "k").allowed for _ in range(3)]

    assert decisions == [True, True, False]


def test_denied_requests_take_nothing(tmp_path, clock):
    limiter = limiter_for(tmp_path, clock, RateLimitRule("r", 1, 10))
    limiter.hit("r", "k")
    for _ in range(50):
        limiter.hit("r", "k")

    clock.now += 10

    assert limiter.hit("r", "k").allowed


def test_clock_going_back_refills_nothing(tmp_path, clock):
    limiter = limiter_for(tmp_path, clock, RateLimitRule("r", 1, 10))
    limiter.hit("r", "k")

    clock.now -= 3600

    assert not limiter.hit("r", "k").allowed


def test_keys_and_rules_separate(tmp_path, clock):
    limiter = limiter_for(
        tmp_path, clock, RateLimitRule("a", 1, 60), RateLimitRule("b", 1, 60)
    )

    assert limiter.hit("a", "k1").allowed
    assert limiter.hit("a", "k2").allowed
    assert limiter.hit("b", "k1").allowed
    assert not limiter.hit("a", "k1").allowed


def test_unconfigured_rule_allows(tmp_path, clock):
    limiter = limiter_for(tmp_path, clock)

    assert not limiter.enabled
    assert all(limiter.hit("run_info.token", "k").allowed for _ in range(100))


def test_limiters_share_one_file(tmp_path, clock):
    rule = RateLimitRule("r", 2, 60)
    first = limiter_for(tmp_path, clock, rule)
    second = limiter_for(tmp_path, clock, rule)

    assert first.hit("r", "k").allowed
    assert second.hit("r", "k").allowed
    assert not first.hit("r", "k").allowed
    assert not second.hit("r", "k").allowed


def test_idle_rows_pruned(tmp_path, clock):
    limiter = limiter_for(tmp_path, clock, RateLimitRule("r", 1, 60))
    for number in range(5):
        limiter.hit("r", f"old{number}")

    clock.now += 61 + 60
    limiter.hit("r", "new")
    rows = limiter._connection().execute("SELECT key FROM rate_buckets").fetchall()

    assert rows == [("r:new",)]


def test_broken_table_allows_and_logs(tmp_path, clock, caplog):
    (tmp_path / "limits.sqlite3").mkdir()
    limiter = limiter_for(tmp_path, clock, RateLimitRule("r", 1, 60))
    caplog.set_level(logging.ERROR, logger="argus.ratelimit")

    decisions = [limiter.hit("r", "k").allowed for _ in range(3)]

    assert decisions == [True, True, True]
    assert len(caplog.records) == 1
    assert "allowing the request" in caplog.records[0].getMessage()


def simulate(limiter: RateLimiter, clock: FakeClock, rule: str, times: list[float]):
    """Send one request at each of the given seconds; return the denied ones."""
    start = clock.now
    denied = []
    for offset in times:
        clock.now = start + offset
        if not limiter.hit(rule, "client").allowed:
            denied.append(offset)
    return denied


def test_defaults_allow_linking_client(tmp_path, clock):
    limiter = limiter_for(tmp_path, clock, *DEFAULT_RATE_LIMITS)
    # A streamer who links twice in a row: two rounds of 60 polls a second apart.
    polls = [float(second) for second in range(120)]

    assert simulate(limiter, clock, "get_argus_token.state", polls) == []
    assert simulate(limiter, clock, "get_argus_token.address", polls) == []


def test_defaults_allow_mod_and_app(tmp_path, clock):
    limiter = limiter_for(tmp_path, clock, *DEFAULT_RATE_LIMITS)
    # The app every 5 s for an hour, plus the mod leaving 40 rooms in quick
    # succession (one every 2 s) twice an hour, on one token and one address.
    app_updates = [5.0 * step for step in range(720)]
    room_bursts = [start + 2.0 * room for start in (600, 2400) for room in range(40)]
    updates = sorted(app_updates + room_bursts)

    assert simulate(limiter, clock, "run_info.token", updates) == []
    assert simulate(limiter, clock, "run_info.address", updates) == []


# --- keys ------------------------------------------------------------------


@pytest.mark.parametrize(
    "address, key",
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("", "unknown"),
        (None, "unknown"),
        ("not an address", "unknown"),
    ],
)
def test_address_key(address, key):
    assert address_key(address) == key


def test_hash_key_hides_secret():
    token = secrets.token_urlsafe(32)

    key = hash_key(token)

    assert token not in key
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert hash_key("\ud800") != hash_key("\udfff")


# --- settings ----------------------------------------------------------------


def settings_env(**overrides: str) -> dict[str, str]:
    return support.server_environment(
        ARGUS_STORE="sqlite:////tmp/x.sqlite3", **overrides
    )


def test_settings_default_rules():
    settings = load_settings(settings_env(ARGUS_RATE_LIMITS=""))

    assert settings.rate_limits == DEFAULT_RATE_LIMITS
    assert settings.trust_proxy == "none"


def test_settings_off_disables_all():
    settings = load_settings(settings_env(ARGUS_RATE_LIMITS=" OFF "))

    assert settings.rate_limits == ()


def test_settings_override_and_disable():
    value = "run_info.token=5/1.5, check_argus_token.address=off"

    rules = {
        r.name: r
        for r in load_settings(settings_env(ARGUS_RATE_LIMITS=value)).rate_limits
    }

    assert rules["run_info.token"] == RateLimitRule("run_info.token", 5, 1.5)
    assert "check_argus_token.address" not in rules
    assert rules["run_info.address"] == RateLimitRule("run_info.address", 600, 60)


@pytest.mark.parametrize(
    "value",
    [
        "unknown.rule=1/1",
        "run_info.token",
        "run_info.token=",
        "run_info.token=5",
        "run_info.token=0/60",
        "run_info.token=-1/60",
        "run_info.token=1.5/60",
        "run_info.token=5/0",
        "run_info.token=5/inf",
        "run_info.token=5/nan",
        "run_info.token=10000000/60",
    ],
)
def test_settings_bad_rule_named(value):
    with pytest.raises(ConfigError, match="ARGUS_RATE_LIMITS"):
        load_settings(settings_env(ARGUS_RATE_LIMITS=value))


def test_settings_bad_trust_proxy():
    with pytest.raises(ConfigError, match="ARGUS_TRUST_PROXY"):
        load_settings(settings_env(ARGUS_TRUST_PROXY="x-forwarded-for"))


# --- responses -----------------------------------------------------------------


@pytest.fixture
def limited_app(service_env):
    """An app factory whose rate limits are set by the test."""
    publish_sample_mappings(service_env["ARGUS_STORE"])
    # The first app of a process configures logging and replaces the root
    # handlers, caplog's among them. Doing it here, before caplog is set up,
    # keeps caplog working in tests that list this fixture first.
    configure_logging()
    apps = []

    def make(limits: str, **overrides: str):
        env = dict(service_env, ARGUS_RATE_LIMITS=limits, **overrides)
        application = create_app(load_settings(env), {"TESTING": True})
        apps.append(application)
        return application

    yield make
    for application in apps:
        application.extensions["argus"].shutdown(timeout=5)


def run_body(token: str) -> dict:
    return {"argusProtocolVersion": "2", "argusToken": token, "runData": RUN_DATA}


def test_run_info_token_limit_429(limited_app):
    app = limited_app("run_info.token=3/60")
    token = app.extensions["argus"].links.link("5200000001")
    client = app.test_client()

    answers = [client.post("/run_info", json=run_body(token)) for _ in range(4)]
    other = client.post("/run_info", json=run_body("another-token"))

    assert [answer.text for answer in answers[:3]] == ["ok", "ok", "ok"]
    assert answers[3].status_code == 429
    assert answers[3].headers["Retry-After"] == "20"
    assert answers[3].text == "too many requests, retry after 20 s"
    assert answers[3].mimetype == "text/plain"
    assert answers[3].headers["X-Content-Type-Options"] == "nosniff"
    assert other.text == "bad_argus_token"


def test_run_info_address_limit_429(limited_app):
    app = limited_app("run_info.address=2/60")
    client = app.test_client()

    answers = [client.post("/run_info", data=b"not json") for _ in range(3)]
    elsewhere = client.post(
        "/run_info", data=b"not json", environ_base={"REMOTE_ADDR": "198.51.100.9"}
    )

    assert [answer.status_code for answer in answers] == [400, 400, 429]
    assert answers[2].headers["Retry-After"] == "30"
    assert elsewhere.status_code == 400


def test_get_token_limits_429(limited_app):
    app = limited_app("get_argus_token.state=2/60,get_argus_token.address=3/60")
    client = app.test_client()
    state = secrets.token_hex(16)

    def claim(value: str):
        return client.post(
            "/get_argus_token", json={"argusProtocolVersion": "2", "state": value}
        )

    same_state = [claim(state) for _ in range(3)]
    upper_case = claim(state.upper())
    other_state = claim(secrets.token_hex(16))

    assert [answer.status_code for answer in same_state] == [200, 200, 429]
    assert same_state[2].headers["Retry-After"] == "30"
    assert upper_case.status_code == 429
    assert other_state.status_code == 429
    assert other_state.headers["Retry-After"] == "20"


def test_check_token_limits_429(limited_app):
    app = limited_app("check_argus_token.token=2/60,check_argus_token.address=4/60")
    client = app.test_client()

    def check(token: str):
        return client.get("/check_argus_token", query_string={"argus_token": token})

    same_token = [check("token-a") for _ in range(3)]
    other_token = check("token-b")
    over_address = check("token-c")

    assert [answer.text for answer in same_token[:2]] == ["token_not_ok"] * 2
    assert same_token[2].status_code == 429
    assert other_token.text == "token_not_ok"
    assert over_address.status_code == 429


def test_oauth_limit_redirects_to_fail(limited_app, caplog):
    app = limited_app("oauth_token.address=2/600")
    client = app.test_client()
    caplog.set_level(logging.WARNING, logger="argus.api.auth")
    query = {"code": "unknown-code", "state": secrets.token_hex(16)}

    answers = [client.get("/oauth_token", query_string=query) for _ in range(3)]
    reasons = [
        record.getMessage()
        for record in caplog.records
        if record.name == "argus.api.auth"
    ]

    assert [answer.status_code for answer in answers] == [302, 302, 302]
    assert answers[2].headers["Location"] == "/auth_fail.html"
    assert "Retry-After" not in answers[2].headers
    assert len(reasons) == 3
    assert "too many login attempts" not in reasons[1]
    assert "too many login attempts" in reasons[2]


def test_malformed_tokens_skip_token_bucket(limited_app):
    app = limited_app("check_argus_token.token=1/60")
    client = app.test_client()

    answers = [
        client.get("/check_argus_token", query_string={"argus_token": "tök"})
        for _ in range(3)
    ]

    assert [answer.text for answer in answers] == ["token_not_ok"] * 3


def test_off_never_limits(limited_app):
    app = limited_app("off")
    client = app.test_client()

    answers = [client.post("/run_info", data=b"not json") for _ in range(700)]

    assert {answer.status_code for answer in answers} == {400}


def test_rate_limit_logged_once(limited_app, caplog):
    app = limited_app("run_info.address=1/60")
    client = app.test_client()
    caplog.set_level(logging.WARNING, logger="argus.api.security")

    for _ in range(5):
        client.post("/run_info", data=b"{}")

    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1
    assert "run_info.address" in messages[0]
    assert "127.0.0.1" in messages[0]


def test_token_never_logged(limited_app, caplog):
    app = limited_app("run_info.token=1/60")
    client = app.test_client()
    token = "secret-" + secrets.token_urlsafe(20)
    caplog.set_level(logging.DEBUG)

    for _ in range(3):
        client.post("/run_info", json=run_body(token))

    assert any("run_info.token" in record.getMessage() for record in caplog.records)
    assert all(token not in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    "trust, header_counts",
    [("fly", True), ("none", False)],
    ids=["fly trusted", "header ignored"],
)
def test_fly_client_ip_keys_buckets(limited_app, trust, header_counts):
    app = limited_app("run_info.address=1/60", ARGUS_TRUST_PROXY=trust)
    client = app.test_client()

    def post(address: str):
        return client.post("/run_info", data=b"{}", headers={"Fly-Client-IP": address})

    first = post("203.0.113.1")
    second = post("203.0.113.2")
    repeated = post("203.0.113.1")

    assert first.status_code == 400
    assert (second.status_code == 400) is header_counts
    assert repeated.status_code == 429


def test_fly_bad_header_uses_peer(limited_app):
    app = limited_app("run_info.address=1/60", ARGUS_TRUST_PROXY="fly")
    client = app.test_client()

    first = client.post("/run_info", data=b"{}", headers={"Fly-Client-IP": "junk"})
    second = client.post("/run_info", data=b"{}", headers={"Fly-Client-IP": "x"})
    other_peer = client.post(
        "/run_info", data=b"{}", environ_base={"REMOTE_ADDR": "198.51.100.9"}
    )

    assert first.status_code == 400
    assert second.status_code == 429
    assert other_peer.status_code == 400


# --- across gunicorn workers ---------------------------------------------------

# gunicorn leaves the choice of worker to the kernel, so the tests send requests
# in rounds on new connections until both workers have served some.
ROUND_SIZE = 30
MAX_ROUNDS = 20


def statuses_by_worker(log: str, path: str) -> dict[str, list[str]]:
    """Return the status codes of each worker's access log lines for a path."""
    statuses: dict[str, list[str]] = {}
    pattern = rf'gunicorn\.access\[(\d+)\].*"POST {path} HTTP/1\.1" (\d+) '
    for pid, status in re.findall(pattern, log):
        statuses.setdefault(pid, []).append(status)
    return statuses


def post_in_rounds(service, body: dict) -> tuple[list[str], dict[str, list[str]]]:
    """Post the body until both workers served it.

    Returns the response texts (or status codes) and the statuses per worker.
    """

    def post(_: int) -> str:
        with requests.Session() as session:
            answer = session.post(
                service.url + "/run_info",
                json=body,
                headers={"Connection": "close"},
                timeout=10,
            )
        return answer.text if answer.status_code == 200 else str(answer.status_code)

    answers: list[str] = []
    by_worker: dict[str, list[str]] = {}
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(MAX_ROUNDS):
            answers += pool.map(post, range(ROUND_SIZE))
            by_worker = statuses_by_worker(service.read_log(), "/run_info")
            if len(by_worker) == 2:
                break
    # A worker writes its access line after sending the response, so the last
    # lines can lag behind the responses.
    deadline = time.monotonic() + 5
    while sum(map(len, by_worker.values())) < len(answers):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
        by_worker = statuses_by_worker(service.read_log(), "/run_info")
    return answers, by_worker


def test_limit_shared_across_workers(service_env, start_service):
    publish_sample_mappings(service_env["ARGUS_STORE"])
    env = dict(service_env, ARGUS_RATE_LIMITS="run_info.address=30/3600")
    service = start_service(env, gunicorn_workers=2)

    answers, by_worker = post_in_rounds(service, {"runData": "not an object"})

    # With a counter in each process, the worker that took fewer requests
    # would have allowed up to 30 more of them.
    assert len(by_worker) == 2
    assert answers.count("400") == 30
    assert answers.count("429") == len(answers) - 30
    assert sum(statuses.count("400") for statuses in by_worker.values()) == 30


def test_token_limit_shared_across_workers(service_env, start_service):
    publish_sample_mappings(service_env["ARGUS_STORE"])
    token = LinkRegistry(open_store(service_env["ARGUS_STORE"])).link("5200000002")
    env = dict(service_env, ARGUS_RATE_LIMITS="run_info.token=10/3600")
    service = start_service(env, gunicorn_workers=2)

    answers, by_worker = post_in_rounds(service, run_body(token))

    assert len(by_worker) == 2
    assert answers.count("ok") == 10
    assert answers.count("429") == len(answers) - 10
    assert sum(statuses.count("200") for statuses in by_worker.values()) == 10
