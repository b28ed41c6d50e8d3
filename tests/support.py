"""Start the project's servers as child processes for integration tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("ARGUS_SHARED_DIR", REPO_ROOT.parent / "shared"))

# Fixed test secrets. The extension secret is base64, as Twitch shows it.
TWITCH_ID = "testclientid0000000000000000000"
CLIENT_SECRET = "testclientsecret00000000000000"
EXTENSION_SECRET = "c2VjcmV0LWZvci10ZXN0cy1vbmx5LWRvLW5vdC11c2U="
OWNER_ID = "100000001"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free at the time of the call."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(**overrides: str) -> dict[str, str]:
    """Return os.environ plus the fixed test secrets and the given overrides."""
    env = dict(os.environ)
    env.update(
        ARGUS_TWITCH_ID=TWITCH_ID,
        ARGUS_CLIENT_SECRET=CLIENT_SECRET,
        ARGUS_EXTENSION_SECRET=EXTENSION_SECRET,
        ARGUS_OWNER_ID=OWNER_ID,
    )
    env.update(overrides)
    return env


class ServerProcess:
    """A child process serving HTTP on 127.0.0.1, stopped with stop()."""

    def __init__(
        self,
        args: Sequence[str],
        port: int,
        env: Mapping[str, str],
        ready_path: str = "/",
        log_path: Path | None = None,
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        log = open(log_path, "wb") if log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            list(args),
            cwd=REPO_ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready(ready_path)

    def _wait_ready(self, ready_path: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with code {self.process.returncode}: "
                    f"{self.read_log()[-2000:]}"
                )
            try:
                requests.get(self.url + ready_path, timeout=0.5)
                return
            except requests.RequestException:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server on port {self.port} not ready after {timeout}s")

    def read_log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> int | None:
        """Send SIGTERM, wait for the exit and return the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def python_command(*args: str) -> list[str]:
    """Return a command line that runs the interpreter running the tests."""
    return [sys.executable, *args]


AWS_TEST_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EC2_METADATA_DISABLED",
)


def aws_environment(endpoint_url: str) -> dict[str, str]:
    """Return boto3 settings that reach only the given local S3 endpoint."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        # Never ask an instance metadata endpoint for credentials.
        "AWS_EC2_METADATA_DISABLED": "true",
    }
