"""Linking through real HTTP: gunicorn service, emulator as Twitch, S3 or SQLite.

The service runs under gunicorn with two workers, so a pending login is often
recorded by one process and claimed by the other.
"""

from __future__ import annotations

import base64
import re
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from argus.links import CHANNEL_PREFIX
from argus.links import LinkRegistry
from argus.links import hash_token
from argus.store import open_store
from tests import support
from tests.conftest import publish_sample_mappings
from tests.test_linking import authorize
from tests.test_linking import new_state
from tests.test_linking import new_user_id
from tests.test_linking import query_of

CONCURRENT_LINKS = 40
# Emulator codes and access tokens are 30 lower-case hex characters, so a run
# of exactly that length in the store or the log is probably one of them.
EMULATOR_SECRET_PATTERN = re.compile(r"(?<![0-9a-f])[0-9a-f]{30}(?![0-9a-f])")


@pytest.fixture(scope="module", params=["s3", "sqlite"])
def service(request, emulator, moto_url, tmp_path_factory):
    """A gunicorn service whose public URL is its own address on 127.0.0.1.

    The URL must be known before the start, because the service sends it to
    Twitch as the redirect URI, so the port is chosen here.
    """
    import boto3

    directory = tmp_path_factory.mktemp("linking-http")
    bucket = None
    if request.param == "s3":
        bucket = f"argus-linking-{uuid.uuid4().hex[:12]}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        store_url = "s3://" + bucket
    else:
        store_url = f"sqlite:///{directory / 'store.sqlite3'}"
    publish_sample_mappings(store_url)

    port = support.free_port()
    url = f"http://127.0.0.1:{port}"
    env = support.server_environment(
        ARGUS_STORE=store_url,
        ARGUS_TWITCH_API_URL=emulator.url,
        ARGUS_TWITCH_AUTH_URL=emulator.url,
        ARGUS_STATE_DIR=str(directory / "state"),
        ARGUS_PUBLIC_URL=url,
    )
    command = support.python_command(
        "-m",
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "app:app",
    )
    server = support.ServerProcess(
        command,
        port,
        env,
        ready_path="/healthz",
        log_path=directory / "service.log",
    )
    server.store_url = store_url
    server.bucket = bucket
    yield server
    server.stop()


@dataclass(frozen=True)
class Login:
    """What a client and its streamer's browser saw during one link."""

    state: str
    code: str
    token: str
    picture: str


def approve(service, emulator, state: str, **extra: str):
    """Approve a login on the emulator and return its redirect URL and the response."""
    location = authorize(emulator.url, service.url + "/oauth_token", state, **extra)
    response = requests.get(location, allow_redirects=False, timeout=15)
    return location, response


def claim(service, state: str, version: str | None = "2") -> requests.Response:
    body = {"state": state}
    if version is not None:
        body["argusProtocolVersion"] = version
    return requests.post(service.url + "/get_argus_token", json=body, timeout=10)


def check_token(service, token: str) -> str:
    response = requests.get(
        service.url + "/check_argus_token",
        params={"argus_token": token},
        timeout=10,
    )
    assert response.status_code == 200
    return response.text


def link_user(service, emulator, user_id: str) -> Login:
    """Run one whole protocol-2 link for a Twitch user and return what it gave."""
    state = new_state()
    location, response = approve(service, emulator, state, emulator_user_id=user_id)
    assert response.headers.get("Location") == "/auth_success.html"
    body = claim(service, state).text
    token, picture = body.split("\n")
    return Login(state, query_of(location)["code"], token, picture)


def test_flow_protocol_2(service, emulator):
    user_id = new_user_id()
    state = new_state()

    location = authorize(
        emulator.url,
        service.url + "/oauth_token",
        state,
        emulator_user_id=user_id,
        emulator_username="FlowStreamer",
    )
    redirect = query_of(location)
    assert location.startswith(service.url + "/oauth_token?")
    assert redirect["state"] == state
    assert redirect["scope"] == "openid"
    assert redirect["code"]

    response = requests.get(location, allow_redirects=False, timeout=15)
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth_success.html"
    page = requests.get(service.url + response.headers["Location"], timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")

    first = claim(service, state)
    assert first.status_code == 200
    lines = first.text.split("\n")
    assert len(lines) == 2
    token, picture = lines
    assert len(token) >= 22
    assert picture.startswith("https://")
    assert check_token(service, token) == "token_ok"
    link = LinkRegistry(open_store(service.store_url)).get_link(user_id)
    assert link is not None
    assert link.username == "FlowStreamer"
    assert link.picture == picture

    second = claim(service, state)
    assert second.status_code == 200
    assert second.text == "FAIL"

    relinked = link_user(service, emulator, user_id)
    assert relinked.token != token
    assert check_token(service, token) == "token_not_ok"
    assert check_token(service, relinked.token) == "token_ok"

    link = LinkRegistry(open_store(service.store_url)).get_link(user_id)
    assert link.token_hash == hash_token(relinked.token)


@pytest.mark.parametrize(
    "version, expected_lines", [("1", 1), (None, 1), ("3", 0)], ids=str
)
def test_flow_protocol_versions(service, emulator, version, expected_lines):
    state = new_state()
    _, response = approve(service, emulator, state, emulator_user_id=new_user_id())
    assert response.headers["Location"] == "/auth_success.html"

    claimed = claim(service, state, version)

    assert claimed.status_code == 200
    if expected_lines == 0:
        assert claimed.text == "FAIL"
        return
    assert "\n" not in claimed.text
    assert check_token(service, claimed.text) == "token_ok"


@pytest.mark.parametrize(
    "query",
    [
        "",
        "state={state}",
        "code=abc123",
        "code=abc123&state=zz",
        "error=x&state={state}",
    ],
    ids=["empty", "no code", "no state", "bad state", "error"],
)
def test_oauth_token_bad_redirect_fails(service, query):
    url = service.url + "/oauth_token?" + query.format(state=new_state())

    response = requests.get(url, allow_redirects=False, timeout=10)

    assert response.status_code == 302
    assert response.headers["Location"] == "/auth_fail.html"


def test_flow_denied_fails(service, emulator):
    state = new_state()

    location, response = approve(service, emulator, state, emulator_deny="1")

    assert query_of(location)["error"] == "access_denied"
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth_fail.html"
    assert claim(service, state).text == "FAIL"


def test_flow_concurrent_links(service, emulator):
    user_ids = [new_user_id() for _ in range(CONCURRENT_LINKS)]

    with ThreadPoolExecutor(max_workers=CONCURRENT_LINKS) as pool:
        logins = list(
            pool.map(lambda user: link_user(service, emulator, user), user_ids)
        )
    with ThreadPoolExecutor(max_workers=CONCURRENT_LINKS) as pool:
        checks = list(pool.map(lambda login: check_token(service, login.token), logins))

    assert checks == ["token_ok"] * CONCURRENT_LINKS
    assert len({login.token for login in logins}) == CONCURRENT_LINKS
    store = open_store(service.store_url)
    channel_keys = set(store.list_keys(CHANNEL_PREFIX))
    expected_keys = {CHANNEL_PREFIX + user_id for user_id in user_ids}
    assert len(channel_keys & expected_keys) == CONCURRENT_LINKS
    links = LinkRegistry(store)
    for user_id, login in zip(user_ids, logins, strict=True):
        assert links.get_link(user_id).token_hash == hash_token(login.token), user_id


# --- Secrets stay out of the store and the log -----------------------------------


def stored_texts(service) -> dict[str, str]:
    """Return every stored object (key and body) as text, keyed by a label."""
    texts = {}
    if service.bucket is not None:
        import boto3

        s3 = boto3.client("s3")
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=service.bucket)
        for page in pages:
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=service.bucket, Key=item["Key"])
                text = body["Body"].read().decode(errors="replace")
                texts[item["Key"]] = item["Key"] + "\n" + text
        return texts

    path = Path(service.store_url.removeprefix("sqlite:///")).resolve()
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        ]
        for table in tables:
            for number, row in enumerate(
                connection.execute(f'SELECT * FROM "{table}"')
            ):
                cells = [
                    cell.decode(errors="replace")
                    if isinstance(cell, bytes)
                    else str(cell)
                    for cell in row
                ]
                texts[f"{table} row {number}"] = "\n".join(cells)
    finally:
        connection.close()
    return texts


def test_flow_keeps_secrets_out(service, emulator):
    login = link_user(service, emulator, new_user_id())
    relink = link_user(service, emulator, new_user_id())
    assert check_token(service, login.token) == "token_ok"
    assert check_token(service, relink.token) == "token_ok"
    assert claim(service, login.state).text == "FAIL"
    # A code redeemed twice also goes through the log.
    location, _ = approve(service, emulator, new_state(), emulator_user_id="77")
    requests.get(location, allow_redirects=False, timeout=15)
    reused_code = query_of(location)["code"]
    secrets = {
        "token": login.token,
        "second token": relink.token,
        "code": login.code,
        "second code": relink.code,
        "reused code": reused_code,
        "state": login.state,
        "client secret": support.CLIENT_SECRET,
        "extension secret": support.EXTENSION_SECRET,
        "decoded extension secret": base64.b64decode(support.EXTENSION_SECRET).decode(),
    }

    texts = stored_texts(service)
    texts["service log"] = service.read_log()

    assert len(texts) > 2
    assert "linked channel" in texts["service log"]
    for label, text in texts.items():
        for name, secret in secrets.items():
            assert secret not in text, f"{name} found in {label}"
        found = EMULATOR_SECRET_PATTERN.findall(text)
        assert found == [], f"code or access token {found} in {label}"


def test_dev_server_log_keeps_secrets_out(start_service, service_env, emulator):
    # `flask run` serves `make run` and the start_service fixture, and its
    # request log is separate from gunicorn's access log.
    server = start_service(service_env)
    token = LinkRegistry(open_store(service_env["ARGUS_STORE"])).link(new_user_id())
    code = "0123456789abcdef0123456789abcd"
    state = new_state()

    checked = check_token(server, token)
    redirect = requests.get(
        server.url + "/oauth_token",
        params={"code": code, "scope": "openid", "state": state},
        allow_redirects=False,
        timeout=15,
    )
    server.stop()
    log = server.read_log()

    assert checked == "token_ok"
    assert redirect.headers["Location"] == "/auth_fail.html"
    assert "/check_argus_token" in log
    assert token not in log
    assert code not in log
    assert state not in log
