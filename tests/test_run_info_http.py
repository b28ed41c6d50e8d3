"""Run updates through real HTTP: service under gunicorn, emulator as Twitch."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from argus.broadcast.framing import join_parts
from argus.links import LinkRegistry
from argus.store import open_store
from tests import support
from tests.conftest import emulator_messages
from tests.conftest import publish_sample_mappings

CASES = json.loads(
    (support.SHARED_DIR / "fixtures" / "run_data_cases.json").read_text()
)
MAPPING_FILES = sorted({case["mappings"] for case in CASES})
PART_MAX_BYTES = 4096


def wait_for_broadcast(emulator, channel: str, timeout: float = 15.0) -> list[str]:
    """Return the parts of the first complete broadcast the channel received."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = emulator_messages(emulator, channel)
        if messages:
            count = int(messages[0].split("*")[3])
            if len(messages) >= count:
                return messages
        time.sleep(0.05)
    raise AssertionError(f"no complete broadcast for channel {channel}")


@pytest.fixture(scope="module", params=MAPPING_FILES)
def running_service(request, emulator, tmp_path_factory):
    """A gunicorn service with two workers on the mappings of one generation."""
    mappings_file = request.param
    directory = tmp_path_factory.mktemp("service")
    store_url = f"sqlite:///{directory / 'store.sqlite3'}"
    publish_sample_mappings(store_url, support.SHARED_DIR / "data" / mappings_file)
    env = support.server_environment(
        ARGUS_STORE=store_url,
        ARGUS_TWITCH_API_URL=emulator.url,
        ARGUS_TWITCH_AUTH_URL=emulator.url,
        ARGUS_STATE_DIR=str(directory / "state"),
        ARGUS_PART_MAX_BYTES=str(PART_MAX_BYTES),
    )
    port = support.free_port()
    server = support.ServerProcess(
        support.python_command(
            "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "app:app"
        ),
        port,
        env,
        ready_path="/healthz",
        log_path=directory / "service.log",
    )
    server.store_url = store_url
    server.mappings_file = mappings_file
    yield server
    server.stop()


def post_run(service, token: str, case: dict) -> requests.Response:
    body = {
        "argusProtocolVersion": case["argusProtocolVersion"],
        "argusToken": token,
        "runData": case["runData"],
    }
    return requests.post(service.url + "/run_info", json=body, timeout=10)


def test_fixture_cases_reach_emulator(running_service, emulator):
    cases = [c for c in CASES if c["mappings"] == running_service.mappings_file]
    links = LinkRegistry(open_store(running_service.store_url))
    channels = {}
    for number, case in enumerate(cases):
        channel = str(7_000_000_000 + hash(running_service.url) % 10**6 * 100 + number)
        token = links.link(channel, username=f"streamer{number}")
        answer = post_run(running_service, token, case)
        assert answer.status_code == 200, case["name"]
        assert answer.text == "ok", case["name"]
        channels[case["name"]] = channel

    for case in cases:
        parts = wait_for_broadcast(emulator, channels[case["name"]])
        assert json.loads(join_parts(parts)) == case["expected"], case["name"]


def test_parts_are_framed_within_limit(running_service, emulator):
    case = next(c for c in CASES if c["name"] == "largest realistic run")
    if case["mappings"] != running_service.mappings_file:
        pytest.skip("the largest run uses the other mapping generation")
    channel = "7999000001"
    token = LinkRegistry(open_store(running_service.store_url)).link(channel)
    assert post_run(running_service, token, case).text == "ok"

    parts = wait_for_broadcast(emulator, channel)
    headers = [part.split("*") for part in parts]
    count = int(headers[0][3])
    assert count > 1
    assert len(parts) == count
    assert {header[1] for header in headers} == {headers[0][1]}
    assert sorted(int(header[2]) for header in headers) == list(range(count))
    assert all(int(header[3]) == count for header in headers)
    assert max(len(part.encode()) for part in parts) <= PART_MAX_BYTES


def test_unknown_token_is_rejected(running_service, emulator):
    answer = post_run(running_service, "not-a-linked-token", CASES[0])
    assert answer.status_code == 200
    assert answer.text == "bad_argus_token"


@pytest.mark.parametrize(
    "body, status",
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'{"argusToken": "x"}', 400),
        (b'{"argusToken": "x", "runData": "boons"}', 400),
        (b'{"argusToken": "x", "runData": {"boonData": 7}}', 400),
        (b"{" + b" " * (65 * 1024) + b"}", 413),
    ],
)
def test_bad_bodies_get_client_errors(running_service, body, status):
    answer = requests.post(
        running_service.url + "/run_info",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == status
    assert len(answer.text) < 100
    assert "Traceback" not in answer.text


def test_sample_files_exist():
    assert Path(support.REPO_ROOT / "ui_mappings.json").exists()
