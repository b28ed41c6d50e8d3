"""Delivery under load and faults: gunicorn service, emulator as Twitch."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from argus.broadcast.framing import join_parts
from argus.links import LinkRegistry
from argus.mappings import parse_mappings
from argus.store import open_store
from argus.transform import transform_run_data
from tests import support
from tests.conftest import emulator_messages
from tests.conftest import publish_sample_mappings

MAPPINGS_FILE = support.SHARED_DIR / "data" / "ui_mappings.json"
CASES = json.loads(
    (support.SHARED_DIR / "fixtures" / "run_data_cases.json").read_text()
)
NOMINAL = next(case for case in CASES if case["name"] == "nominal protocol 2")


def run_data_variant(number: int) -> dict:
    """Return the nominal run with element counts that encode ``number``."""
    run_data = dict(NOMINAL["runData"])
    run_data["elementalData"] = (
        f"Fire:{number % 1000};;Water:{number // 1000};;Earth:1;;Air:0;;Aether:0"
    )
    return run_data


def expected_run(run_data: dict) -> dict:
    mappings = parse_mappings(MAPPINGS_FILE.read_bytes())
    return transform_run_data(run_data, mappings).run


def last_complete_broadcast(emulator, channel: str) -> dict | None:
    """Return the run the extension shows: the newest nonce with all its parts."""
    parts_by_nonce: dict[str, list[str]] = {}
    order: list[str] = []
    for message in emulator_messages(emulator, channel):
        nonce = message.split("*")[1]
        if nonce not in parts_by_nonce:
            order.append(nonce)
        parts_by_nonce.setdefault(nonce, []).append(message)
    for nonce in reversed(order):
        parts = parts_by_nonce[nonce]
        if len(parts) == int(parts[0].split("*")[3]):
            return json.loads(join_parts(parts))
    return None


def wait_for_run(emulator, channel: str, expected: dict, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    displayed_run = None
    while time.monotonic() < deadline:
        displayed_run = last_complete_broadcast(emulator, channel)
        if displayed_run == expected:
            break
        time.sleep(0.1)
    return displayed_run


def pubsub_status_count(emulator, status: str) -> int:
    stats = requests.get(emulator.url + "/emulator/stats", timeout=5).json()
    return stats["pubsub"].get(status, 0)


@pytest.fixture
def gunicorn_service(service_env, start_service):
    # These tests post 20 updates a second per token on purpose.
    env = dict(service_env, ARGUS_RATE_LIMITS="off")
    publish_sample_mappings(env["ARGUS_STORE"], MAPPINGS_FILE)
    server = start_service(env, gunicorn_workers=2)
    server.env = env
    server.links = LinkRegistry(open_store(service_env["ARGUS_STORE"]))
    return server


def post_update(session, service, token: str, run_data: dict) -> None:
    body = {"argusProtocolVersion": "2", "argusToken": token, "runData": run_data}
    answer = session.post(service.url + "/run_info", json=body, timeout=10)
    assert answer.status_code == 200
    assert answer.text == "ok"


def flood(service, token: str, rate: float, seconds: float, first: int = 0) -> int:
    """Post ``rate`` different updates per second; return the last number sent."""
    session = requests.Session()
    count = int(rate * seconds)
    started = time.monotonic()
    for index in range(count):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        post_update(session, service, token, run_data_variant(first + index))
    return first + count - 1


def test_flood_on_one_channel_stays_under_limit(gunicorn_service, emulator):
    channel = "8100000001"
    token = gunicorn_service.links.link(channel)
    rate_limited_before = pubsub_status_count(emulator, "429")

    last = flood(gunicorn_service, token, rate=20, seconds=30)
    time.sleep(3)

    displayed_run = last_complete_broadcast(emulator, channel)
    assert displayed_run == expected_run(run_data_variant(last))
    assert pubsub_status_count(emulator, "429") == rate_limited_before


def test_flood_on_ten_channels_stays_under_limit(gunicorn_service, emulator):
    channels = [f"82000000{number:02d}" for number in range(10)]
    tokens = [gunicorn_service.links.link(channel) for channel in channels]
    rate_limited_before = pubsub_status_count(emulator, "429")
    last_numbers: dict[str, int] = {}

    def run(channel: str, token: str) -> None:
        last_numbers[channel] = flood(gunicorn_service, token, rate=20, seconds=30)

    threads = [
        threading.Thread(target=run, args=pair)
        for pair in zip(channels, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(3)

    for channel in channels:
        displayed_run = last_complete_broadcast(emulator, channel)
        expected = expected_run(run_data_variant(last_numbers[channel]))
        assert displayed_run == expected, channel
    assert pubsub_status_count(emulator, "429") == rate_limited_before


@pytest.mark.parametrize("status", [503, 429])
def test_newest_state_survives_failures(gunicorn_service, emulator, status):
    channel = f"83000000{status}"
    token = gunicorn_service.links.link(channel)
    answer = requests.post(
        emulator.url + "/emulator/faults",
        json={"endpoint": "pubsub", "status": status, "count": 5},
        timeout=5,
    )
    assert answer.status_code == 200

    session = requests.Session()
    for number in range(3):
        post_update(session, gunicorn_service, token, run_data_variant(number))
    expected = expected_run(run_data_variant(2))

    assert wait_for_run(emulator, channel, expected, timeout=30) == expected


def test_identical_state_is_not_sent_again(gunicorn_service, emulator):
    channel = "8400000001"
    token = gunicorn_service.links.link(channel)
    session = requests.Session()
    post_update(session, gunicorn_service, token, run_data_variant(1))
    expected = expected_run(run_data_variant(1))
    assert wait_for_run(emulator, channel, expected, timeout=10) == expected
    sent = len(emulator_messages(emulator, channel))

    post_update(session, gunicorn_service, token, run_data_variant(1))
    time.sleep(2)

    assert len(emulator_messages(emulator, channel)) == sent


def extension_token(channel: str) -> str:
    import base64

    import jwt

    claims = {
        "exp": int(time.time()) + 60,
        "channel_id": channel,
        "opaque_user_id": "UA1",
        "role": "viewer",
        "pubsub_perms": {"listen": ["broadcast"]},
    }
    secret = base64.b64decode(support.EXTENSION_SECRET)
    return jwt.encode(claims, secret, algorithm="HS256")


def get_run_data(service, channel: str) -> requests.Response:
    return requests.get(
        service.url + "/get_streamer_run_data",
        headers={"x-extension-jwt": extension_token(channel)},
        timeout=10,
    )


def test_latest_run_survives_restart(gunicorn_service, emulator, start_service):
    channel = "8500000001"
    token = gunicorn_service.links.link(channel, username="Restarted")
    session = requests.Session()
    for number in range(3):
        post_update(session, gunicorn_service, token, run_data_variant(number))
    expected = expected_run(run_data_variant(2))
    assert wait_for_run(emulator, channel, expected, timeout=15) == expected

    answers = [get_run_data(gunicorn_service, channel) for _ in range(6)]
    assert all(json.loads(answer.text) == expected for answer in answers)

    gunicorn_service.stop()
    restarted = start_service(gunicorn_service.env, gunicorn_workers=2)
    assert json.loads(get_run_data(restarted, channel).text) == expected


def test_run_data_without_posts_is_no_data(gunicorn_service):
    answer = get_run_data(gunicorn_service, "8500000002")
    assert answer.status_code == 200
    assert answer.text == "NO_DATA"


def test_run_data_rejects_invalid_jwt(gunicorn_service):
    answer = requests.get(
        gunicorn_service.url + "/get_streamer_run_data",
        headers={"x-extension-jwt": "not.a.jwt"},
        timeout=10,
    )
    assert answer.status_code == 401


def test_dashboard_lists_recent_streamers(service_env, start_service, emulator):
    env = dict(service_env, ARGUS_DASHBOARD_RECENT_SECONDS="8")
    publish_sample_mappings(env["ARGUS_STORE"], MAPPINGS_FILE)
    service = start_service(env, gunicorn_workers=2)
    links = LinkRegistry(open_store(env["ARGUS_STORE"]))
    old, new = "8600000001", "8600000002"
    old_token = links.link(
        old, username="Earlier", picture="https://example.test/a.png"
    )
    session = requests.Session()
    post_update(session, service, old_token, run_data_variant(1))
    time.sleep(9)
    new_token = links.link(
        new, username="Current", picture="https://example.test/b.png"
    )
    post_update(session, service, new_token, run_data_variant(2))

    deadline = time.monotonic() + 15
    dashboard = {}
    while time.monotonic() < deadline and new not in dashboard:
        dashboard = requests.get(service.url + "/dashboard_run_data", timeout=5).json()
        time.sleep(0.5)

    assert list(dashboard) == [new]
    assert dashboard[new]["twitchProfile"] == {
        "twitchUsername": "Current",
        "twitchProfilePic": "https://example.test/b.png",
    }
    assert dashboard[new]["runData"] == expected_run(run_data_variant(2))
