"""Log format: plain text or JSON lines, request ids, no secrets, no repeats."""

from __future__ import annotations

import json
import logging
import logging.config
import re

import pytest
import requests

from argus.logs import JsonFormatter
from argus.logs import QueryStringFilter
from argus.logs import RepeatLimiter
from argus.logs import RequestIdFilter
from argus.logs import TextFormatter
from argus.logs import logging_config
from tests import support
from tests.conftest import publish_sample_mappings

MAPPINGS_FILE = support.REPO_ROOT / "ui_mappings.json"
SECRET = "SECRETVALUE0123456789"


def make_record(message: str = "sent %d parts", *args, **extra) -> logging.LogRecord:
    record = logging.LogRecord(
        "argus.test", logging.WARNING, __file__, 1, message, args or (3,), None
    )
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_json_fields():
    line = JsonFormatter().format(make_record(request_id="ab12cd34"))
    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "argus.test"
    assert entry["message"] == "sent 3 parts"
    assert entry["request_id"] == "ab12cd34"
    assert isinstance(entry["process"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])


def test_json_exception_one_line():
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        import sys

        record = make_record(exc_info=sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError" in json.loads(line)["exception"]


def test_text_has_request_id():
    line = TextFormatter().format(make_record(request_id="ab12cd34"))
    assert " WARNING argus.test[" in line
    assert "[ab12cd34]: sent 3 parts" in line


def test_text_without_request_id():
    line = TextFormatter().format(make_record())
    assert line.endswith("]: sent 3 parts")
    assert "[None]" not in line


def test_filter_reads_access_header():
    record = logging.LogRecord(
        "gunicorn.access",
        logging.INFO,
        __file__,
        1,
        "%(U)s",
        ({"U": "/healthz", "{x-request-id}o": "0a1b2c3d"},),
        None,
    )
    RequestIdFilter().filter(record)
    assert record.request_id == "0a1b2c3d"


def test_filter_drops_dev_server_query():
    record = logging.LogRecord(
        "werkzeug",
        logging.INFO,
        __file__,
        1,
        '127.0.0.1 - - [date] "%s" %s %s',
        (f"GET /check_argus_token?argus_token={SECRET} HTTP/1.1", "200", "-"),
        None,
    )
    QueryStringFilter().filter(record)
    message = record.getMessage()
    assert SECRET not in message
    assert '"GET /check_argus_token HTTP/1.1" 200 -' in message


def test_filter_reads_flask_request(app):
    from flask import g

    record = make_record()
    with app.test_request_context("/healthz"):
        g.request_id = "feedbeef"
        RequestIdFilter().filter(record)
    assert record.request_id == "feedbeef"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_config_level_and_format(log_format):
    config = logging_config("warning", log_format)
    assert config["root"]["level"] == "WARNING"
    assert config["handlers"]["stderr"]["formatter"] == log_format
    assert config["loggers"]["gunicorn.access"]["propagate"] is False
    assert config["loggers"]["botocore"]["level"] == "WARNING"


@pytest.mark.parametrize("level", ["debug", "info"])
def test_config_quiets_botocore(level):
    config = logging_config(level, "text")
    assert config["root"]["level"] == level.upper()
    assert config["loggers"]["botocore"]["level"] == "WARNING"
    assert config["loggers"]["urllib3"]["level"] == "WARNING"


def test_repeat_limiter_counts():
    limiter = RepeatLimiter(interval=60)
    assert limiter.allow("a") == 0
    assert limiter.allow("a") is None
    assert limiter.allow("a") is None
    assert limiter.allow("b") == 0


def test_repeat_limiter_reports_suppressed():
    limiter = RepeatLimiter(interval=0.0)
    assert limiter.allow("a") == 0
    assert limiter.allow("a") == 0


def check_token(service, token: str) -> requests.Response:
    return requests.get(
        service.url + "/check_argus_token", params={"argus_token": token}, timeout=10
    )


@pytest.fixture
def logged_service(service_env, start_service, tmp_path):
    """Start the service with the given log format, under gunicorn by default."""

    def start(log_format: str, gunicorn_workers: int = 2):
        env = dict(service_env, ARGUS_LOG_FORMAT=log_format)
        if gunicorn_workers:
            env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / f"metrics-{log_format}")
        publish_sample_mappings(env["ARGUS_STORE"], MAPPINGS_FILE)
        return start_service(env, gunicorn_workers=gunicorn_workers)

    return start


def test_gunicorn_json_lines(logged_service):
    service = logged_service("json")
    answer = check_token(service, SECRET)
    assert answer.status_code == 200
    request_id = answer.headers["X-Request-Id"]
    requests.get(service.url + "/readyz", timeout=10)
    service.stop()

    lines = [line for line in service.read_log().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    loggers = {entry["logger"] for entry in entries}
    access = [
        entry
        for entry in entries
        if entry["logger"] == "gunicorn.access"
        and "/check_argus_token" in entry["message"]
    ]
    assert len(entries) > 3
    for entry in entries:
        assert {"time", "level", "logger", "process", "message"} <= set(entry)
    assert "gunicorn.error" in loggers
    assert any(name.startswith("argus.") for name in loggers)
    assert len(access) == 1
    assert access[0]["request_id"] == request_id
    request_lines = [
        entry
        for entry in entries
        if entry.get("request_id") == request_id and entry is not access[0]
    ]
    # The service's own line about the token check carries the same id.
    assert request_lines


def test_gunicorn_text_hides_token(logged_service):
    service = logged_service("text")
    answer = check_token(service, SECRET)
    request_id = answer.headers["X-Request-Id"]
    requests.post(
        service.url + "/run_info",
        json={"argusToken": SECRET, "runData": {}},
        timeout=10,
    )
    service.stop()

    output = service.read_log()
    access = [
        line
        for line in output.splitlines()
        if "gunicorn.access" in line and "/check_argus_token" in line
    ]
    assert answer.text == "token_not_ok"
    assert SECRET not in output
    assert "argus_token=" not in output
    assert len(access) == 1
    assert f"[{request_id}]" in access[0]
    assert '"GET /check_argus_token HTTP/1.1" 200' in access[0]


def test_dev_server_hides_token(logged_service):
    service = logged_service("text", gunicorn_workers=0)
    answer = check_token(service, SECRET)
    service.stop()

    output = service.read_log()
    assert answer.text == "token_not_ok"
    assert SECRET not in output
    assert '"GET /check_argus_token HTTP/1.1" 200' in output
