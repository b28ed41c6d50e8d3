"""Fixtures: real moto S3 server, Twitch emulator and service processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from argus import create_app
from argus.config import load_settings
from argus.mapping_cache import MAPPINGS_KEY
from argus.store import open_store
from tests import support


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start moto_server on 127.0.0.1 and point boto3 at it for the session."""
    port = support.free_port()
    moto = shutil.which("moto_server", path=str(Path(support.sys.executable).parent))
    command = [moto] if moto else support.python_command("-m", "moto.server")
    server = support.ServerProcess(
        [*command, "-H", "127.0.0.1", "-p", str(port)],
        port,
        os.environ,
        ready_path="/moto-api/",
        log_path=tmp_path_factory.mktemp("moto") / "moto.log",
    )
    previous = {name: os.environ.get(name) for name in support.AWS_TEST_ENV}
    os.environ.update(support.aws_environment(server.url))
    yield server.url
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    server.stop()


@pytest.fixture
def s3_bucket(moto_url: str) -> str:
    """Create an empty bucket in moto and return its name."""
    import boto3

    name = f"argus-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite3'}"


@pytest.fixture(params=["sqlite", "s3"])
def store_url(request: pytest.FixtureRequest) -> str:
    """A fresh store URL of each implementation in turn."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return "s3://" + request.getfixturevalue("s3_bucket")


@pytest.fixture(scope="session")
def emulator(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[support.ServerProcess]:
    """The Twitch emulator, shared by the session; tests use their own channels."""
    port = support.free_port()
    server = support.ServerProcess(
        support.python_command(
            "tools/twitch_emulator.py", "--host", "127.0.0.1", "--port", str(port)
        ),
        port,
        support.server_environment(),
        ready_path="/emulator/health",
        log_path=tmp_path_factory.mktemp("emulator") / "emulator.log",
    )
    yield server
    server.stop()


@pytest.fixture
def channel_id() -> str:
    """A broadcaster id no other test uses."""
    return str(uuid.uuid4().int % 10**12 + 10**12)


def publish_sample_mappings(store_url: str, mappings_file: Path | None = None) -> None:
    path = mappings_file or support.SHARED_DIR / "data" / "ui_mappings.json"
    open_store(store_url).put(MAPPINGS_KEY, path.read_bytes())


@pytest.fixture
def service_env(
    sqlite_url: str, emulator: support.ServerProcess, tmp_path: Path
) -> dict[str, str]:
    """Environment of a service using a fresh SQLite store and the emulator."""
    return support.server_environment(
        ARGUS_STORE=sqlite_url,
        ARGUS_TWITCH_API_URL=emulator.url,
        ARGUS_TWITCH_AUTH_URL=emulator.url,
        ARGUS_STATE_DIR=str(tmp_path / "state"),
    )


@pytest.fixture
def app(service_env: dict[str, str]):
    """An in-process app on a fresh SQLite store with the current mappings."""
    publish_sample_mappings(service_env["ARGUS_STORE"])
    application = create_app(load_settings(service_env), {"TESTING": True})
    yield application
    application.extensions["argus"].shutdown(timeout=5)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def start_service(
    tmp_path: Path,
) -> Iterator[Callable[..., support.ServerProcess]]:
    """Start the service as a real HTTP server; stopped after the test."""
    started: list[support.ServerProcess] = []

    def start(
        env: dict[str, str], gunicorn_workers: int = 0, extra_args: tuple = ()
    ) -> support.ServerProcess:
        port = support.free_port()
        if gunicorn_workers:
            command = support.python_command(
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "-w",
                str(gunicorn_workers),
                "-b",
                f"127.0.0.1:{port}",
                *extra_args,
                "app:app",
            )
        else:
            command = support.python_command(
                "-m", "flask", "--app", "app", "run", "--port", str(port)
            )
        server = support.ServerProcess(
            command,
            port,
            env,
            ready_path="/healthz",
            log_path=tmp_path / f"service-{port}.log",
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def link_channel(env: dict[str, str], channel_id: str, *options: str) -> str:
    """Link a channel with the operator command and return the printed token."""
    result = subprocess.run(
        support.python_command(
            "-m", "flask", "--app", "app", "argus", "link", channel_id, *options
        ),
        cwd=support.REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def emulator_messages(emulator: support.ServerProcess, channel: str) -> list[str]:
    answer = requests.get(
        emulator.url + "/emulator/pubsub",
        params={"broadcaster_id": channel},
        timeout=5,
    )
    answer.raise_for_status()
    return [item["message"] for item in answer.json()]
