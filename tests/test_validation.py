"""Input limits and validation of every endpoint, in process and through gunicorn."""

from __future__ import annotations

import json
import os
import select
import socket
import time

import pytest
import requests

from argus import create_app
from argus.broadcast.framing import join_parts
from argus.config import load_settings
from argus.links import LinkRegistry
from argus.store import open_store
from tests import support
from tests.conftest import emulator_messages
from tests.conftest import publish_sample_mappings

TEN_MEGABYTES = 10 * 1024 * 1024
SEND_CHUNK_BYTES = 64 * 1024
NOMINAL_RUN = {
    "boonData": "Common;;ApolloManaBoon Rare;;AphroditeSpecialBoon",
    "weaponData": "Rare;;DaggerBlockAspect",
    "familiarData": "NOFAMILIARS",
    "extraData": "NOEXTRAS",
    "elementalData": "Fire:1;;Water:0;;Earth:3;;Air:0;;Aether:0",
    "pinData": "NOPINS",
    "vowData": "NOVOWS",
    "arcanaData": "NOARCANA",
}
HOSTILE_ELEMENTS = "Fire:<img src=x onerror=alert(1)>;;Water:2;;Earth:<script>"


@pytest.fixture(scope="module")
def module_env(emulator, tmp_path_factory) -> dict[str, str]:
    """A service environment shared by this module, without rate limits."""
    directory = tmp_path_factory.mktemp("validation")
    store_url = f"sqlite:///{directory / 'store.sqlite3'}"
    publish_sample_mappings(store_url)
    return support.server_environment(
        ARGUS_STORE=store_url,
        ARGUS_TWITCH_API_URL=emulator.url,
        ARGUS_TWITCH_AUTH_URL=emulator.url,
        ARGUS_STATE_DIR=str(directory / "state"),
        ARGUS_RATE_LIMITS="off",
    )


@pytest.fixture(scope="module")
def app(module_env):
    """One in-process app for the module, replacing the per-test one."""
    application = create_app(load_settings(module_env), {"TESTING": True})
    yield application
    application.extensions["argus"].shutdown(timeout=5)


@pytest.fixture(scope="module")
def service(module_env):
    """One gunicorn worker serving the module's store."""
    port = support.free_port()
    server = support.ServerProcess(
        support.python_command(
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "-w",
            "1",
            "-b",
            f"127.0.0.1:{port}",
            "app:app",
        ),
        port,
        module_env,
        ready_path="/healthz",
    )
    server.links = LinkRegistry(open_store(module_env["ARGUS_STORE"]))
    yield server
    server.stop()


def run_body(token: object = "x" * 43, **changes: object) -> dict:
    body = {"argusProtocolVersion": "2", "argusToken": token, "runData": NOMINAL_RUN}
    body.update(changes)
    return body


def linked_token(app, channel: str = "5100000001", token: str | None = None) -> str:
    return app.extensions["argus"].links.link(channel, username="streamer", token=token)


def post_raw(client, path: str, raw: bytes):
    return client.post(path, data=raw, content_type="application/json")


# --- /run_info ----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 20_000 + b"]" * 20_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b'{"argusToken": NaN, "runData": {}}',
        b'{"argusToken": "x", "runData": {"boonData": Infinity}}',
        b'{"argusToken": "x", "runData": {}, "n": 1' + b"0" * 5000 + b"}",
        b"\xef\xbb\xbf\xff",
    ],
    ids=["deep list", "deep object", "nan", "infinity", "huge number", "bad utf-8"],
)
def test_run_info_unparsable_json_400(client, raw):
    response = post_raw(client, "/run_info", raw)

    assert response.status_code == 400
    assert response.text == "request body must be JSON"


@pytest.mark.parametrize(
    "version", [True, 2.5, -1, 1000, "two", "2.0", "", " 2", "1234", [2], {"v": 2}]
)
def test_run_info_bad_version_400(client, version):
    response = client.post("/run_info", json=run_body(argusProtocolVersion=version))

    assert response.status_code == 400
    assert "argusProtocolVersion" in response.text


@pytest.mark.parametrize("version", ["1", "2", "3", 1, 2, None])
def test_run_info_known_versions_pass(client, version):
    response = client.post("/run_info", json=run_body(argusProtocolVersion=version))

    assert response.status_code == 200
    assert response.text == "bad_argus_token"


def test_run_info_absent_version_passes(client):
    body = run_body()
    del body["argusProtocolVersion"]

    response = client.post("/run_info", json=body)

    assert response.status_code == 200
    assert response.text == "bad_argus_token"


@pytest.mark.parametrize(
    "section, text",
    [
        ("boonData", " ".join(["Common;;ZeusWeaponBoon"] * 201)),
        ("vowData", "1;;X " * 201),
        ("pinData", ";;".join(["ZeusWeaponBoon"] * 201)),
        ("elementalData", ";;".join(["Fire:1"] * 201)),
    ],
)
def test_run_info_too_many_items_400(client, section, text):
    run_data = dict(NOMINAL_RUN, **{section: text})

    response = client.post("/run_info", json=run_body(runData=run_data))

    assert response.status_code == 400
    assert response.text == f"runData.{section} has more than 200 items"


def test_run_info_200_items_accepted(app, client):
    token = linked_token(app)
    run_data = dict(
        NOMINAL_RUN,
        boonData=" ".join(["Common;;ZeusWeaponBoon"] * 200),
        pinData=";;".join(["ZeusWeaponBoon"] * 200),
    )

    response = client.post("/run_info", json=run_body(token, runData=run_data))

    assert response.status_code == 200
    assert response.text == "ok"


def test_run_info_long_section_400(client):
    run_data = dict(NOMINAL_RUN, boonData="A" * (16 * 1024 + 1))

    response = client.post("/run_info", json=run_body(runData=run_data))

    assert response.status_code == 400
    assert "longer than 16384 characters" in response.text


@pytest.mark.parametrize(
    "token",
    [
        None,
        7,
        ["token"],
        "",
        "a" * 257,
        "tök" + "e" * 40,
        "tab\tinside",
        "line\nbreak",
        "\x7f" * 10,
        "\ud800" * 43,
    ],
    ids=[
        "null",
        "number",
        "list",
        "empty",
        "too long",
        "non-ascii",
        "tab",
        "newline",
        "delete",
        "lone surrogate",
    ],
)
def test_run_info_malformed_token_rejected(client, token):
    response = client.post("/run_info", json=run_body(token))

    assert response.status_code == 200
    assert response.text == "bad_argus_token"


def test_run_info_legacy_token_accepted(app, client):
    legacy = "legacy token ~!@#$%^&*()" + "9" * 200
    token = linked_token(app, token=legacy)

    response = client.post("/run_info", json=run_body(token))

    assert token == legacy
    assert response.status_code == 200
    assert response.text == "ok"


def test_run_info_token_never_echoed(client):
    token = "<b>echo-marker-token</b>"

    response = client.post("/run_info", json=run_body(token))

    assert response.text == "bad_argus_token"
    assert "echo-marker-token" not in response.text
    assert all("echo-marker-token" not in value for _, value in response.headers)


def test_run_info_unknown_keys_ignored(app, client):
    token = linked_token(app)
    run_data = dict(NOMINAL_RUN, futureField={"nested": [1, 2]})

    response = client.post(
        "/run_info", json=run_body(token, runData=run_data, extra=None)
    )

    assert response.status_code == 200
    assert response.text == "ok"


def test_hostile_elements_transformed_safely(app, client):
    token = linked_token(app)
    run_data = dict(NOMINAL_RUN, elementalData=HOSTILE_ELEMENTS)

    response = client.post("/run_info", json=run_body(token, runData=run_data))

    assert response.status_code == 200
    assert response.text == "ok"


# --- /get_argus_token ------------------------------------------------------------


@pytest.mark.parametrize("version", [True, False, 2.0, 1.0, "02", " 2", ["2"]])
def test_get_token_bad_version_fails(client, version):
    body = {"argusProtocolVersion": version, "state": "0" * 32}

    response = client.post("/get_argus_token", json=body)

    assert response.status_code == 200
    assert response.text == "FAIL"


@pytest.mark.parametrize(
    "state", ["0" * 31, "0" * 33, "g" * 32, "０" * 32, "0" * 31 + "\n", None, 32]
)
def test_get_token_bad_state_fails(client, state):
    response = client.post(
        "/get_argus_token", json={"argusProtocolVersion": "2", "state": state}
    )

    assert response.status_code == 200
    assert response.text == "FAIL"


def test_get_token_deep_json_400(client):
    response = post_raw(client, "/get_argus_token", b"[" * 20_000 + b"]" * 20_000)

    assert response.status_code == 400
    assert response.text == "request body must be JSON"


def test_get_token_answer_not_cached(client):
    response = client.post(
        "/get_argus_token", json={"argusProtocolVersion": "2", "state": "a" * 32}
    )

    assert response.text == "FAIL"
    assert response.headers["Cache-Control"] == "no-store"


# --- /check_argus_token ------------------------------------------------------------


@pytest.mark.parametrize(
    "token", ["", "a" * 257, "tök", "a\x00b", "a\x1bb", "\x7f"], ids=repr
)
def test_check_token_malformed_not_ok(client, token):
    response = client.get("/check_argus_token", query_string={"argus_token": token})

    assert response.status_code == 200
    assert response.text == "token_not_ok"


def test_check_token_missing_not_ok(client):
    response = client.get("/check_argus_token")

    assert response.status_code == 200
    assert response.text == "token_not_ok"


def test_check_token_legacy_shape_ok(app, client):
    legacy = "Legacy-Token with spaces:" + "z" * 231
    token = linked_token(app, token=legacy)

    response = client.get("/check_argus_token", query_string={"argus_token": token})

    assert len(legacy) == 256
    assert response.status_code == 200
    assert response.text == "token_ok"


# --- /oauth_token --------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"state": "0" * 32},
        {"code": "abc"},
        {"code": "abc", "state": "0" * 31},
        {"code": "abc", "state": "0" * 33},
        {"code": "abc", "state": "z" * 32},
        {"code": "a b", "state": "0" * 32},
        {"code": "é" * 10, "state": "0" * 32},
        {"code": "c" * 513, "state": "0" * 32},
        {"code": "<script>", "state": "<script>"},
        {"error": "access_denied", "error_description": "<b>", "state": "x"},
    ],
)
def test_oauth_bad_query_fail_page(client, query):
    response = client.get("/oauth_token", query_string=query)

    assert response.status_code == 302
    assert response.headers["Location"] == "/auth_fail.html"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


# --- through gunicorn ------------------------------------------------------------


def worker_pids(master_pid: int) -> list[int]:
    """Return the pids of the gunicorn workers of a master process."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:
            pids.append(int(name))
    return pids


def peak_rss_kib(pid: int) -> int:
    """Return the peak resident set size (VmHWM) of a process in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmHWM for process {pid}")


def send_large_body(url: str, chunked: bool) -> tuple[int, bytes]:
    """Send a 10 MB /run_info body until the server responds or disconnects.

    Returns the bytes of the body sent and whatever response was read. The send
    buffer is kept small so that the kernel cannot take the whole body at once.
    """
    host, port = url.removeprefix("http://").split(":")
    framing = (
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {TEN_MEGABYTES}"
    )
    head = (
        f"POST /run_info HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    )
    chunk = b" " * SEND_CHUNK_BYTES
    sent = 0
    answer = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_CHUNK_BYTES)
        sock.sendall(head.encode())
        try:
            while sent < TEN_MEGABYTES:
                readable, _, _ = select.select([sock], [], [], 0.005)
                if readable:
                    break
                if chunked:
                    sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                else:
                    sock.sendall(chunk)
                sent += len(chunk)
            answer = sock.recv(4096)
        except (BrokenPipeError, ConnectionResetError):
            pass
    return sent, answer


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_ten_megabytes_rejected_early(service, chunked):
    (worker,) = worker_pids(service.process.pid)
    # Warm the worker up with an accepted and a rejected body first.
    for size in (1000, 70 * 1024):
        requests.post(service.url + "/run_info", data=b" " * size, timeout=10)
    peak_before = peak_rss_kib(worker)

    sent, answer = send_large_body(service.url, chunked)

    growth_kib = peak_rss_kib(worker) - peak_before
    assert sent < TEN_MEGABYTES
    assert answer == b"" or answer.startswith(b"HTTP/1.1 413 ")
    assert growth_kib < 4 * 1024
    assert requests.get(service.url + "/healthz", timeout=5).ok


def test_content_length_rejected_before_body(service):
    _, answer = send_large_body(service.url, chunked=False)

    assert answer.startswith(b"HTTP/1.1 413 ")


def test_chunked_body_within_limit_accepted(service):
    token = service.links.link("5100000002")
    body = json.dumps(run_body(token)).encode()

    def pieces():
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    response = requests.post(
        service.url + "/run_info",
        data=pieces(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    assert "Content-Length" not in response.request.headers
    assert response.status_code == 200
    assert response.text == "ok"


def test_chunked_body_over_limit_413(service):
    def pieces():
        for _ in range(20):
            yield b" " * 4096

    response = requests.post(service.url + "/run_info", data=pieces(), timeout=10)

    assert response.status_code == 413
    assert response.text == "request body too large"


def wait_for_parts(emulator, channel: str, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = emulator_messages(emulator, channel)
        if messages and len(messages) >= int(messages[0].split("*")[3]):
            return messages
        time.sleep(0.05)
    raise AssertionError(f"no complete broadcast for channel {channel}")


def test_markup_never_broadcast(service, emulator, channel_id):
    token = service.links.link(channel_id)
    run_data = dict(NOMINAL_RUN, elementalData=HOSTILE_ELEMENTS)

    response = requests.post(
        service.url + "/run_info",
        json=run_body(token, runData=run_data),
        timeout=10,
    )
    parts = wait_for_parts(emulator, channel_id)
    run = json.loads(join_parts(parts))

    assert response.text == "ok"
    assert not any("<img" in part for part in parts)
    assert not any("onerror" in part for part in parts)
    assert not any("<script" in part for part in parts)
    assert {"name": "Fire"} in run["elementalData"]
    assert {"name": "Water", "value": "2"} in run["elementalData"]
    assert {"name": "Earth"} in run["elementalData"]
