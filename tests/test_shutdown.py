"""SIGTERM to gunicorn: broadcasts in flight and pending still reach Twitch."""

from __future__ import annotations

import json
import signal
from concurrent.futures import ThreadPoolExecutor

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

MAPPINGS_FILE = support.REPO_ROOT / "ui_mappings.json"
SAMPLE_RUN = json.loads((support.REPO_ROOT / "docs" / "sample_run.json").read_text())
CHANNELS = [f"87000000{number:02d}" for number in range(10)]
# Small parts, so that each broadcast needs several slow pubsub calls.
PART_MAX_BYTES = 512
PUBSUB_DELAY_MS = 300


def run_data_variant(number: int) -> dict:
    """Return the sample run with an element count that encodes ``number``."""
    run_data = dict(SAMPLE_RUN["runData"])
    run_data["elementalData"] = f"Fire:{number};;Water:0;;Earth:0;;Air:2;;Aether:0"
    return run_data


def expected_run(run_data: dict) -> dict:
    mappings = parse_mappings(MAPPINGS_FILE.read_bytes())
    return transform_run_data(run_data, mappings).run


def complete_broadcasts(emulator, channel: str) -> list[dict]:
    """Return every broadcast of the channel whose parts all arrived, in order."""
    parts_by_nonce: dict[str, list[str]] = {}
    for message in emulator_messages(emulator, channel):
        nonce = message.split("*")[1]
        parts_by_nonce.setdefault(nonce, []).append(message)
    runs = []
    for parts in parts_by_nonce.values():
        if len(parts) == int(parts[0].split("*")[3]):
            runs.append(json.loads(join_parts(parts)))
    return runs


@pytest.fixture
def slow_emulator(tmp_path):
    """A Twitch emulator of this test only, whose pubsub calls take 300 ms."""
    port = support.free_port()
    server = support.ServerProcess(
        support.python_command(
            "tools/twitch_emulator.py", "--host", "127.0.0.1", "--port", str(port)
        ),
        port,
        support.server_environment(),
        ready_path="/emulator/health",
        log_path=tmp_path / "emulator.log",
    )
    fault = {"endpoint": "pubsub", "delay_ms": PUBSUB_DELAY_MS, "count": 10_000}
    answer = requests.post(server.url + "/emulator/faults", json=fault, timeout=5)
    answer.raise_for_status()
    yield server
    server.stop()


def test_sigterm_drains_broadcasts(service_env, start_service, slow_emulator, tmp_path):
    env = dict(
        service_env,
        ARGUS_TWITCH_API_URL=slow_emulator.url,
        ARGUS_TWITCH_AUTH_URL=slow_emulator.url,
        ARGUS_PART_MAX_BYTES=str(PART_MAX_BYTES),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    publish_sample_mappings(env["ARGUS_STORE"], MAPPINGS_FILE)
    links = LinkRegistry(open_store(env["ARGUS_STORE"]))
    tokens = {channel: links.link(channel) for channel in CHANNELS}
    service = start_service(env, gunicorn_workers=2)

    def post(number: int) -> str:
        body = {
            "argusProtocolVersion": "2",
            "argusToken": tokens[CHANNELS[number]],
            "runData": run_data_variant(number),
        }
        answer = requests.post(service.url + "/run_info", json=body, timeout=10)
        return answer.text

    with ThreadPoolExecutor(max_workers=len(CHANNELS)) as pool:
        answers = list(pool.map(post, range(len(CHANNELS))))
    service.process.send_signal(signal.SIGTERM)
    exit_code = service.process.wait(timeout=40)

    assert answers == ["ok"] * len(CHANNELS)
    assert exit_code == 0
    for number, channel in enumerate(CHANNELS):
        runs = complete_broadcasts(slow_emulator, channel)
        assert runs, f"channel {channel} received no complete broadcast"
        assert runs[-1] == expected_run(run_data_variant(number)), channel
