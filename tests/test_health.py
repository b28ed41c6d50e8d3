"""/healthz and /readyz, including a store that stops, hangs and comes back."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import boto3
import pytest
import requests

from argus import create_app
from argus.api.health import ReadinessProbe
from argus.config import load_settings
from tests import support
from tests.conftest import publish_sample_mappings

MAPPINGS_FILE = support.REPO_ROOT / "ui_mappings.json"


def test_healthz_answers(client):
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.text == "ok"


def test_readyz_ready(client):
    answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.text == "ready"
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.fixture
def bare_app(service_env):
    """An in-process app whose store has no mappings."""
    application = create_app(load_settings(service_env), {"TESTING": True})
    yield application
    application.extensions["argus"].shutdown(timeout=2)


def test_readyz_without_mappings(bare_app):
    answer = bare_app.test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.text == "game mappings not loaded"


def test_readyz_after_mappings_published(bare_app, service_env):
    client = bare_app.test_client()
    assert client.get("/readyz").status_code == 503

    publish_sample_mappings(service_env["ARGUS_STORE"], MAPPINGS_FILE)
    deadline = time.monotonic() + 5
    answer = client.get("/readyz")
    while answer.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
        answer = client.get("/readyz")

    assert answer.status_code == 200


def test_probe_caches_result():
    calls = []

    def check():
        calls.append(1)
        return None

    probe = ReadinessProbe(check, cache_seconds=60)
    assert probe.reason_not_ready() is None
    assert probe.reason_not_ready() is None
    assert len(calls) == 1


def test_probe_reports_check_error():
    def check():
        raise RuntimeError("boom")

    probe = ReadinessProbe(check)
    assert probe.reason_not_ready() == "readiness check failed"


def test_probe_hung_check_times_out():
    release = threading.Event()
    probe = ReadinessProbe(lambda: release.wait(10) and None, deadline_seconds=0.2)
    try:
        assert "timed out" in probe.reason_not_ready()
        # A probe during the same hung check does not wait again.
        started = time.monotonic()
        assert "timed out" in probe.reason_not_ready()
        assert time.monotonic() - started < 0.1
    finally:
        release.set()


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    """A TCP port that accepts connections (in the backlog) and never responds."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_readyz_with_hanging_store(service_env, hanging_endpoint, monkeypatch):
    for name, value in support.aws_environment(hanging_endpoint).items():
        monkeypatch.setenv(name, value)
    env = dict(
        service_env,
        ARGUS_STORE="s3://argus-hanging-bucket",
        ARGUS_HTTP_TIMEOUT_SECONDS="1",
    )
    application = create_app(load_settings(env), {"TESTING": True})
    try:
        started = time.monotonic()
        answer = application.test_client().get("/readyz")
        elapsed = time.monotonic() - started
    finally:
        application.extensions["argus"].shutdown(timeout=1)

    assert answer.status_code == 503
    assert "timed out" in answer.text
    assert elapsed < 2.0


class MotoServer:
    """A moto S3 server of one test, restartable on the same port."""

    def __init__(self, tmp_path) -> None:
        self.port = support.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp_path = tmp_path
        self.server: support.ServerProcess | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.server = support.ServerProcess(
            support.python_command(
                "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)
            ),
            self.port,
            dict(support.server_environment(), **support.aws_environment(self.url)),
            ready_path="/moto-api/",
            log_path=self.tmp_path / f"moto-{self.starts}.log",
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@pytest.fixture
def own_moto(tmp_path, monkeypatch) -> Iterator[MotoServer]:
    """A moto server that only this test uses; boto3 in the test process too."""
    moto = MotoServer(tmp_path)
    for name, value in support.aws_environment(moto.url).items():
        monkeypatch.setenv(name, value)
    moto.start()
    yield moto
    moto.stop()


def prepare_bucket(bucket: str) -> None:
    """Create the bucket and publish mappings (moto keeps objects in memory)."""
    boto3.client("s3").create_bucket(Bucket=bucket)
    publish_sample_mappings(f"s3://{bucket}", MAPPINGS_FILE)


def poll_readyz(service, status: int, timeout: float) -> requests.Response:
    """GET /readyz until it returns ``status`` or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    answer = requests.get(service.url + "/readyz", timeout=5)
    while answer.status_code != status and time.monotonic() < deadline:
        time.sleep(0.05)
        answer = requests.get(service.url + "/readyz", timeout=5)
    return answer


def test_readyz_follows_store(own_moto, service_env, start_service, tmp_path):
    bucket = f"argus-ready-{uuid.uuid4().hex[:12]}"
    prepare_bucket(bucket)
    env = dict(
        service_env,
        **support.aws_environment(own_moto.url),
        ARGUS_STORE=f"s3://{bucket}",
        ARGUS_HTTP_TIMEOUT_SECONDS="1",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    service = start_service(env, gunicorn_workers=1)
    assert poll_readyz(service, 200, timeout=10).status_code == 200

    own_moto.stop()
    stopped_at = time.monotonic()
    down = poll_readyz(service, 503, timeout=2.0)
    assert down.status_code == 503
    assert time.monotonic() - stopped_at < 2.0
    assert down.text in ("store unavailable", "readiness check timed out after 1s")

    own_moto.start()
    prepare_bucket(bucket)
    up = poll_readyz(service, 200, timeout=15)
    assert up.status_code == 200
    assert up.text == "ready"
    assert requests.get(service.url + "/healthz", timeout=5).status_code == 200
