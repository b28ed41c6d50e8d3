"""Run the service locally: Twitch emulator, SQLite store and sample mappings.

Used by ``make run``. Everything lives under ``var/`` in the repository and
listens on 127.0.0.1 only. Stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VAR_DIR = REPO_ROOT / "var"

# Development-only values. The extension secret is base64, as Twitch shows it.
DEV_ENVIRONMENT = {
    "ARGUS_TWITCH_ID": "devextensionclientid00000000000",
    "ARGUS_CLIENT_SECRET": "devclientsecret000000000000000",
    "ARGUS_EXTENSION_SECRET": "ZGV2ZWxvcG1lbnQtb25seS1leHRlbnNpb24tc2VjcmV0IQ==",
    "ARGUS_OWNER_ID": "100000001",
    "ARGUS_LOG_LEVEL": "INFO",
    # Published mappings show up within seconds instead of a minute.
    "ARGUS_MAPPINGS_REFRESH_SECONDS": "5",
}
DEV_CHANNEL_ID = "123456789"
DEV_USERNAME = "DevStreamer"


def wait_for(url: str, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(
                f"{url} did not start: the process exited with {process.returncode}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    sys.exit(f"{url} did not answer within {timeout:.0f}s")


def ensure_port_free(port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            sys.exit(
                f"port {port} on 127.0.0.1 is in use, perhaps by another 'make run'; "
                "stop it or choose other ports with --port and --emulator-port"
            )


def write_environment_file(env: dict[str, str]) -> Path:
    """Write the settings of this run for operator commands in another shell."""
    names = sorted(name for name in env if name.startswith("ARGUS_"))
    path = VAR_DIR / "dev.env"
    path.write_text("".join(f"{name}={shlex.quote(env[name])}\n" for name in names))
    return path


def run_flask_command(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "argus", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"flask argus {args[0]} failed:\n{result.stderr}{result.stdout}")
    return result.stdout.strip().splitlines()[-1]


def write_sample_payload(token: str) -> Path:
    payload = json.loads((REPO_ROOT / "docs" / "sample_run.json").read_text())
    payload["argusToken"] = token
    path = VAR_DIR / "sample_run.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=3000, help="service port")
    parser.add_argument(
        "--emulator-port", type=int, default=3001, help="Twitch emulator port"
    )
    options = parser.parse_args()

    ensure_port_free(options.port)
    ensure_port_free(options.emulator_port)
    VAR_DIR.mkdir(exist_ok=True)
    emulator_url = f"http://127.0.0.1:{options.emulator_port}"
    service_url = f"http://127.0.0.1:{options.port}"
    env = dict(os.environ)
    env.update(DEV_ENVIRONMENT)
    env.update(
        ARGUS_STORE=f"sqlite:///{VAR_DIR / 'store.sqlite3'}",
        ARGUS_STATE_DIR=str(VAR_DIR / "state"),
        ARGUS_TWITCH_API_URL=emulator_url,
        ARGUS_TWITCH_AUTH_URL=emulator_url,
        ARGUS_PUBLIC_URL=service_url,
    )

    children: list[subprocess.Popen] = []
    try:
        emulator = subprocess.Popen(
            [
                sys.executable,
                "tools/twitch_emulator.py",
                "--host",
                "127.0.0.1",
                "--port",
                str(options.emulator_port),
                "--user-id",
                DEV_CHANNEL_ID,
                "--username",
                DEV_USERNAME,
            ],
            cwd=REPO_ROOT,
            env=env,
        )
        children.append(emulator)
        wait_for(emulator_url + "/emulator/health", emulator)

        run_flask_command(env, "update-ui-mappings", "ui_mappings.json")
        token = run_flask_command(
            env, "link", DEV_CHANNEL_ID, "--username", DEV_USERNAME
        )
        payload_path = write_sample_payload(token)
        env_path = write_environment_file(env).relative_to(REPO_ROOT)

        service = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "-b",
                f"127.0.0.1:{options.port}",
                "app:app",
            ],
            cwd=REPO_ROOT,
            env=env,
        )
        children.append(service)
        wait_for(service_url + "/healthz", service)

        print(
            f"""
Argus is running on {service_url} (Twitch emulator on {emulator_url}).
Store: {env["ARGUS_STORE"]}

Dev channel {DEV_CHANNEL_ID} ({DEV_USERNAME}) is linked. Its Argus token:
{token}

Post a run as the game mod does:
curl -s -X POST {service_url}/run_info -H 'Content-Type: application/json' \\
     --data @{payload_path.relative_to(REPO_ROOT)}

Then see the parts that reached the emulator:
curl -s '{emulator_url}/emulator/pubsub?broadcaster_id={DEV_CHANNEL_ID}'

Run operator commands against this store from another shell:
set -a; . {env_path}; set +a
.venv/bin/flask --app app argus print-tokens

Press Ctrl-C to stop.
""",
            flush=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = next(child for child in children if child.poll() is not None)
        raise SystemExit(
            f"{' '.join(failed.args[1:3])} exited with {failed.returncode}; stopping"
        )
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    main()
