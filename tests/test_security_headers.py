"""Security headers, CORS and the server banner."""

from __future__ import annotations

import re
import socket

import pytest
import requests

from argus import create_app
from argus.config import ConfigError
from argus.config import load_settings
from tests import support
from tests.conftest import publish_sample_mappings

EXTENSION_ORIGIN = f"https://{support.TWITCH_ID}.ext-twitch.tv"
DASHBOARD_ORIGIN = "https://argus-h2-backend.fly.dev"
LOCAL_TEST_ORIGIN = "http://localhost:8080"
BROWSER_PATHS = ["/check_login", "/get_streamer_run_data", "/dashboard_run_data"]
CLIENT_REQUESTS = [
    ("POST", "/run_info"),
    ("POST", "/get_argus_token"),
    ("GET", "/check_argus_token?argus_token=x"),
]
PAGES = ["/auth_success.html", "/auth_fail.html"]


@pytest.fixture(scope="module")
def make_app(emulator, tmp_path_factory):
    """Build apps on one store; each gets the given extra settings."""
    directory = tmp_path_factory.mktemp("headers")
    store_url = f"sqlite:///{directory / 'store.sqlite3'}"
    publish_sample_mappings(store_url)
    apps = []

    def make(**overrides: str):
        env = support.server_environment(
            ARGUS_STORE=store_url,
            ARGUS_TWITCH_API_URL=emulator.url,
            ARGUS_TWITCH_AUTH_URL=emulator.url,
            ARGUS_STATE_DIR=str(directory / f"state{len(apps)}"),
            **overrides,
        )
        application = create_app(load_settings(env), {"TESTING": True})
        apps.append(application)
        return application

    yield make
    for application in apps:
        application.extensions["argus"].shutdown(timeout=5)


@pytest.fixture(scope="module")
def client(make_app):
    return make_app(ARGUS_RATE_LIMITS="run_info.address=3/3600").test_client()


def answer_for(client, method: str, path: str, **kwargs):
    return client.open(path, method=method, **kwargs)


# --- headers on every response -------------------------------------------------


EVERY_KIND_OF_RESPONSE = [
    ("GET", "/healthz"),
    ("GET", "/dashboard_run_data"),
    ("GET", "/get_streamer_run_data"),
    ("GET", "/check_login"),
    ("GET", "/check_argus_token"),
    ("GET", "/oauth_token"),
    ("GET", "/auth_success.html"),
    ("POST", "/get_argus_token"),
    ("OPTIONS", "/check_login"),
    ("OPTIONS", "/run_info"),
    ("GET", "/no-such-page"),
    ("PUT", "/run_info"),
    ("HEAD", "/dashboard_run_data"),
]


@pytest.mark.parametrize("method, path", EVERY_KIND_OF_RESPONSE)
def test_nosniff_on_every_response(client, method, path):
    response = answer_for(client, method, path)

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in response.headers


def test_nosniff_on_error_responses(client):
    too_large = client.post("/run_info", data=b" " * (65 * 1024))
    bad_json = client.post("/run_info", data=b"{")
    limited = [client.post("/run_info", data=b"{") for _ in range(3)][-1]

    assert too_large.status_code == 413
    assert bad_json.status_code == 400
    assert limited.status_code == 429
    for response in (too_large, bad_json, limited):
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_api_responses_forbid_content(client):
    response = client.get("/dashboard_run_data")

    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy


def test_hsts_on_https_only(make_app, client):
    plain_http = make_app(ARGUS_PUBLIC_URL="http://127.0.0.1:3000").test_client()

    assert client.get("/healthz").headers["Strict-Transport-Security"] == (
        "max-age=31536000"
    )
    assert "Strict-Transport-Security" not in plain_http.get("/healthz").headers


# --- the HTML pages --------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_page_security_headers(client, path):
    response = client.get(path)
    policy = response.headers["Content-Security-Policy"]

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.mimetype_params["charset"] == "utf-8"
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "base-uri 'none'" in policy
    assert "form-action 'none'" in policy
    assert "script-src" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_nothing_external(client, path):
    html = client.get(path).text

    assert "<script" not in html.lower()
    assert re.search(r"\b(src|href|action)\s*=", html, re.IGNORECASE) is None
    assert "url(" not in html
    assert "@import" not in html


# --- CORS --------------------------------------------------------------------------


def preflight(client, path: str, origin: str):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-extension-jwt",
        },
    )


@pytest.mark.parametrize("path", BROWSER_PATHS)
@pytest.mark.parametrize("origin", [EXTENSION_ORIGIN, DASHBOARD_ORIGIN])
def test_cors_preflight_allowed_origin(client, path, origin):
    response = preflight(client, path, origin)

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Allow-Methods"] == "GET, OPTIONS"
    assert "x-extension-jwt" in response.headers["Access-Control-Allow-Headers"]
    assert "Origin" in response.headers.get_all("Vary")
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("path", BROWSER_PATHS)
def test_cors_on_response(client, path):
    response = client.get(path, headers={"Origin": EXTENSION_ORIGIN})

    assert response.headers["Access-Control-Allow-Origin"] == EXTENSION_ORIGIN
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        f"http://{support.TWITCH_ID}.ext-twitch.tv",
        f"https://{support.TWITCH_ID}.ext-twitch.tv.evil.example",
        f"https://evil{support.TWITCH_ID}.ext-twitch.tv",
        "https://other.ext-twitch.tv",
        EXTENSION_ORIGIN + "/",
        EXTENSION_ORIGIN.upper(),
        LOCAL_TEST_ORIGIN,
    ],
)
@pytest.mark.parametrize("path", BROWSER_PATHS)
def test_cors_other_origins_refused(client, path, origin):
    answer = client.get(path, headers={"Origin": origin})
    options = preflight(client, path, origin)

    assert "Access-Control-Allow-Origin" not in answer.headers
    assert "Access-Control-Allow-Origin" not in options.headers
    assert "Access-Control-Allow-Headers" not in options.headers


@pytest.mark.parametrize("method, path", CLIENT_REQUESTS + [("GET", "/healthz")])
def test_no_cors_on_client_endpoints(client, method, path):
    response = answer_for(client, method, path, headers={"Origin": EXTENSION_ORIGIN})
    options = preflight(client, path.split("?")[0], EXTENSION_ORIGIN)

    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in options.headers


def test_cors_local_test_origin(make_app):
    client = make_app(
        ARGUS_CORS_ORIGINS=f"{EXTENSION_ORIGIN}, {LOCAL_TEST_ORIGIN}/"
    ).test_client()

    local = preflight(client, "/check_login", LOCAL_TEST_ORIGIN)
    hosted = preflight(client, "/check_login", EXTENSION_ORIGIN)
    dashboard = preflight(client, "/dashboard_run_data", DASHBOARD_ORIGIN)

    assert local.headers["Access-Control-Allow-Origin"] == LOCAL_TEST_ORIGIN
    assert hosted.headers["Access-Control-Allow-Origin"] == EXTENSION_ORIGIN
    assert "Access-Control-Allow-Origin" not in dashboard.headers


def test_cors_dashboard_origin_setting(make_app):
    client = make_app(ARGUS_DASHBOARD_ORIGIN="https://dash.example").test_client()

    dashboard = preflight(client, "/dashboard_run_data", "https://dash.example")
    extension = preflight(client, "/check_login", EXTENSION_ORIGIN)

    assert dashboard.headers["Access-Control-Allow-Origin"] == "https://dash.example"
    assert extension.headers["Access-Control-Allow-Origin"] == EXTENSION_ORIGIN


@pytest.mark.parametrize(
    "value", ["https://a.example/path", "a.example", "*", "https://a.example,ftp://b"]
)
def test_cors_origin_setting_validated(value):
    env = support.server_environment(
        ARGUS_STORE="sqlite:////tmp/x.sqlite3", ARGUS_CORS_ORIGINS=value
    )

    with pytest.raises(ConfigError, match="ARGUS_CORS_ORIGINS"):
        load_settings(env)


# --- through gunicorn -------------------------------------------------------------


@pytest.fixture(scope="module")
def gunicorn_service(emulator, tmp_path_factory):
    directory = tmp_path_factory.mktemp("banner")
    store_url = f"sqlite:///{directory / 'store.sqlite3'}"
    publish_sample_mappings(store_url)
    env = support.server_environment(
        ARGUS_STORE=store_url,
        ARGUS_TWITCH_API_URL=emulator.url,
        ARGUS_TWITCH_AUTH_URL=emulator.url,
        ARGUS_STATE_DIR=str(directory / "state"),
    )
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
        env,
        ready_path="/healthz",
    )
    yield server
    server.stop()


@pytest.mark.parametrize("path", ["/healthz", "/no-such-page", "/auth_fail.html"])
def test_no_server_banner(gunicorn_service, path):
    response = requests.get(gunicorn_service.url + path, timeout=5)
    server = response.headers.get("Server", "")

    assert "gunicorn" not in server.lower()
    assert re.search(r"[0-9]", server) is None
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_malformed_request_no_banner(gunicorn_service):
    with socket.create_connection(("127.0.0.1", gunicorn_service.port), 5) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = sock.recv(4096).decode("latin-1")

    assert answer.startswith("HTTP/1.1 400 ")
    assert "gunicorn" not in answer.lower()
