"""Deployment files: fly.toml, Dockerfile, gunicorn.conf.py and the workflows agree."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests import support

ROOT = support.REPO_ROOT
FLY = tomllib.loads((ROOT / "fly.toml").read_text())


def dockerfile_instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, with continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    logical = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        keyword, _, arguments = logical.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        logical = ""
    return instructions


def instruction_values(keyword: str) -> list[str]:
    instructions = dockerfile_instructions()
    return [arguments for name, arguments in instructions if name == keyword]


def gunicorn_settings(tmp_path: Path) -> dict[str, str]:
    """Return the settings gunicorn reads from gunicorn.conf.py, as printed."""
    env = support.server_environment(
        ARGUS_STORE=f"sqlite:///{tmp_path / 'store.sqlite3'}",
        ARGUS_STATE_DIR=str(tmp_path / "state"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    env.pop("ARGUS_BIND", None)
    result = subprocess.run(
        support.python_command(
            "-m", "gunicorn", "-c", "gunicorn.conf.py", "--print-config", "app:app"
        ),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    settings = {}
    for line in result.stdout.splitlines():
        name, separator, value = line.partition("=")
        if separator:
            settings[name.strip()] = value.strip()
    return settings


def test_ports_agree(tmp_path):
    bind = gunicorn_settings(tmp_path)["bind"]
    exposed = instruction_values("EXPOSE")

    assert FLY["http_service"]["internal_port"] == 3000
    assert exposed == ["3000"]
    assert bind == "['0.0.0.0:3000']"
    assert FLY["metrics"]["port"] == 3000


def test_kill_timeout_covers_drain(tmp_path):
    graceful_timeout = int(gunicorn_settings(tmp_path)["graceful_timeout"])

    assert FLY["kill_signal"] == "SIGTERM"
    assert FLY["kill_timeout"] > graceful_timeout


def test_access_log_drops_query(tmp_path):
    access_format = gunicorn_settings(tmp_path)["access_log_format"]

    assert "%(U)s" in access_format
    assert "%(r)s" not in access_format
    assert "%(q)s" not in access_format


def test_health_check_is_route(client):
    checks = FLY["http_service"]["checks"]
    assert len(checks) == 1
    answer = client.get(checks[0]["path"])
    assert answer.status_code == 200


def test_metrics_path_is_route(client):
    answer = client.get(FLY["metrics"]["path"])
    assert answer.status_code == 200


def test_fly_settings():
    env = FLY["env"]
    assert FLY["app"] == "argus-h2-backend"
    assert FLY["primary_region"]
    assert FLY["http_service"]["force_https"] is True
    assert FLY["http_service"]["min_machines_running"] == 1
    assert env["ARGUS_STORE"] == "s3://argus-h2-backend-argus-tokens"
    assert env["ARGUS_PUBLIC_URL"] == "https://argus-h2-backend.fly.dev"
    assert env["ARGUS_LOG_FORMAT"] == "json"


def test_fly_env_has_no_secrets():
    secrets = {
        "ARGUS_TWITCH_ID",
        "ARGUS_CLIENT_SECRET",
        "ARGUS_EXTENSION_SECRET",
        "ARGUS_OWNER_ID",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }
    assert secrets.isdisjoint(FLY["env"])


def test_fly_env_is_valid(tmp_path):
    from argus.config import load_settings

    env = dict(support.server_environment(), **FLY["env"])
    settings = load_settings(env)
    assert settings.store_url == FLY["env"]["ARGUS_STORE"]
    assert settings.log_format == "json"
    assert str(settings.state_dir) == FLY["env"]["ARGUS_STATE_DIR"]


def test_state_dir_is_users(tmp_path):
    runs = " ".join(instruction_values("RUN"))
    environment = " ".join(instruction_values("ENV"))
    assert f"ARGUS_STATE_DIR={FLY['env']['ARGUS_STATE_DIR']}" in environment
    assert f"chown argus:argus {FLY['env']['ARGUS_STATE_DIR']}" in runs


def test_cmd_runs_gunicorn():
    commands = instruction_values("CMD")
    assert instruction_values("ENTRYPOINT") == []
    assert len(commands) == 1
    command = json.loads(commands[0])
    assert command[0] == "gunicorn"
    assert command[1:3] == ["-c", "gunicorn.conf.py"]
    assert command[-1] == "app:app"


def test_user_is_not_root():
    users = instruction_values("USER")
    assert len(users) == 1
    user, _, group = users[0].partition(":")
    assert user not in ("root", "0")
    assert group not in ("root", "0")
    keywords = [name for name, _ in dockerfile_instructions()]
    assert keywords.index("USER") > keywords.index("RUN")


def test_base_image_is_pinned():
    images = instruction_values("FROM")
    assert len(images) == 1
    name, _, tag = images[0].partition(":")
    assert name == "python"
    assert tag.startswith("3.11.")
    assert "slim" in tag


def test_image_installs_runtime_only():
    runs = instruction_values("RUN")
    installs = [run for run in runs if "pip install" in run]
    assert len(installs) == 1
    assert "-r requirements.txt" in installs[0]
    assert "requirements-dev" not in (ROOT / "Dockerfile").read_text()


def test_dependencies_before_code():
    copies = instruction_values("COPY")
    assert copies[0].split() == ["requirements.txt", "./"]
    keywords = [name for name, _ in dockerfile_instructions()]
    first_copy = keywords.index("COPY")
    assert keywords[first_copy + 1] == "RUN"


def test_dockerignore_admits_copies():
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    for copy in instruction_values("COPY"):
        for source in shlex.split(copy)[:-1]:
            path = ROOT / source
            assert path.exists(), source
            expected = f"!{source}/" if path.is_dir() else f"!{source}"
            assert expected in lines, source
    for excluded in ("tests", ".venv", "var", ".git", "docs", "tools"):
        assert f"!{excluded}" not in lines
        assert f"!{excluded}/" not in lines


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint", path=str(Path(support.sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed; run make install")
    result = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout == ""
    assert result.stderr == ""
    assert result.returncode == 0


def test_deploy_workflow():
    text = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert "branches: [main]" in text
    assert "superfly/flyctl-actions/setup-flyctl@" in text
    assert "flyctl deploy --remote-only" in text
    assert "FLY_API_TOKEN: ${{ secrets.FLY_API_TOKEN }}" in text
    assert "needs: test" in text


def test_test_workflow():
    text = (ROOT / ".github" / "workflows" / "test.yml").read_text()
    assert "pull_request:" in text
    assert "actions/setup-python@" in text
    assert 'python-version: "3.11"' in text
    assert "run: make -C main test" in text
    assert "path: shared" in text
