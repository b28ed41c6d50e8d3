"""Tests of reading the service settings from an environment mapping."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from argus.config import ConfigError
from argus.config import load_settings

SECRET = b"secret-for-tests-only-do-not-use"
OLD_SECRET = b"previous-secret-still-accepted!!"
REQUIRED = {
    "ARGUS_TWITCH_ID": "clientid",
    "ARGUS_CLIENT_SECRET": "clientsecret",
    "ARGUS_EXTENSION_SECRET": base64.b64encode(SECRET).decode(),
    "ARGUS_OWNER_ID": "100000001",
    "ARGUS_STORE": "sqlite:////var/lib/argus/store.sqlite3",
}
NUMBERS = [
    "ARGUS_PART_MAX_BYTES",
    "ARGUS_MAPPINGS_REFRESH_SECONDS",
    "ARGUS_HTTP_TIMEOUT_SECONDS",
    "ARGUS_DASHBOARD_RECENT_SECONDS",
]


def environment(**overrides: str) -> dict[str, str]:
    env = dict(REQUIRED)
    env.update(overrides)
    return env


def test_required_only_defaults() -> None:
    settings = load_settings(environment())

    assert settings.twitch_id == "clientid"
    assert settings.client_secret == "clientsecret"
    assert settings.extension_secrets == (SECRET,)
    assert settings.signing_secret == SECRET
    assert settings.owner_id == "100000001"
    assert settings.store_url == REQUIRED["ARGUS_STORE"]
    assert settings.twitch_api_url == "https://api.twitch.tv"
    assert settings.twitch_auth_url == "https://id.twitch.tv"
    assert settings.part_max_bytes == 4096
    assert settings.mappings_refresh_seconds == 60
    assert settings.http_timeout_seconds == 5
    assert settings.dashboard_recent_seconds == 1800
    assert settings.log_level == "INFO"
    assert settings.log_format == "text"


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_missing_required_named(name: str) -> None:
    env = environment()
    del env[name]

    with pytest.raises(ConfigError, match=name):
        load_settings(env)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_blank_required_named(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(environment(**{name: "   "}))


@pytest.mark.parametrize("value", ["not base64!", "c2VjcmV0eA", "====", "c2Vj cmV0"])
def test_bad_base64_secret(value: str) -> None:
    with pytest.raises(ConfigError, match="ARGUS_EXTENSION_SECRET") as raised:
        load_settings(environment(ARGUS_EXTENSION_SECRET=value))

    assert value not in str(raised.value)


def test_several_secrets() -> None:
    value = " , ".join(
        [base64.b64encode(SECRET).decode(), base64.b64encode(OLD_SECRET).decode()]
    )

    settings = load_settings(environment(ARGUS_EXTENSION_SECRET=value))

    assert settings.extension_secrets == (SECRET, OLD_SECRET)
    assert settings.signing_secret == SECRET


def test_secrets_skip_empty_entries() -> None:
    value = "," + base64.b64encode(SECRET).decode() + ",,"

    settings = load_settings(environment(ARGUS_EXTENSION_SECRET=value))

    assert settings.extension_secrets == (SECRET,)


def test_secrets_only_commas() -> None:
    with pytest.raises(ConfigError, match="ARGUS_EXTENSION_SECRET"):
        load_settings(environment(ARGUS_EXTENSION_SECRET=" , ,"))


def test_secrets_hidden_from_repr() -> None:
    text = repr(load_settings(environment()))

    assert "clientsecret" not in text
    assert repr(SECRET) not in text


@pytest.mark.parametrize(
    "value",
    [
        "sqlite:////var/lib/argus/store.sqlite3",
        "sqlite:///var/lib/argus/store.sqlite3",
        "s3://argus-store",
        "s3://argus-store/",
    ],
)
def test_store_url_accepted(value: str) -> None:
    assert load_settings(environment(ARGUS_STORE=value)).store_url == value


@pytest.mark.parametrize(
    "value",
    [
        "sqlite:///",
        "sqlite://relative.sqlite3",
        "s3://",
        "s3:///",
        "s3://bucket/prefix",
        "postgres://localhost/argus",
        "/var/lib/argus/store.sqlite3",
    ],
)
def test_store_url_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match="ARGUS_STORE"):
        load_settings(environment(ARGUS_STORE=value))


def test_state_dir_explicit() -> None:
    settings = load_settings(environment(ARGUS_STATE_DIR="/srv/argus/state"))

    assert settings.state_dir == Path("/srv/argus/state")


def test_state_dir_default_per_store() -> None:
    first = load_settings(environment(ARGUS_STORE="s3://first"))
    again = load_settings(environment(ARGUS_STORE="s3://first"))
    second = load_settings(environment(ARGUS_STORE="s3://second"))

    assert first.state_dir == again.state_dir
    assert first.state_dir != second.state_dir


def test_numbers_parsed() -> None:
    settings = load_settings(
        environment(
            ARGUS_PART_MAX_BYTES="5120",
            ARGUS_MAPPINGS_REFRESH_SECONDS="2.5",
            ARGUS_HTTP_TIMEOUT_SECONDS=" 10 ",
            ARGUS_DASHBOARD_RECENT_SECONDS="60",
        )
    )

    assert settings.part_max_bytes == 5120
    assert settings.mappings_refresh_seconds == 2.5
    assert settings.http_timeout_seconds == 10
    assert settings.dashboard_recent_seconds == 60


@pytest.mark.parametrize("name", NUMBERS)
@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf", "1e400", "-inf"])
def test_bad_number_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(environment(**{name: value}))


@pytest.mark.parametrize("value", ["255", "5121", "100000", "4096.5"])
def test_part_max_bytes_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match="ARGUS_PART_MAX_BYTES"):
        load_settings(environment(ARGUS_PART_MAX_BYTES=value))


def test_part_max_bytes_minimum() -> None:
    settings = load_settings(environment(ARGUS_PART_MAX_BYTES="256"))

    assert settings.part_max_bytes == 256


@pytest.mark.parametrize(
    "name", ["ARGUS_TWITCH_API_URL", "ARGUS_TWITCH_AUTH_URL", "ARGUS_PUBLIC_URL"]
)
def test_bad_url_named(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(environment(**{name: "ftp://example.com"}))


def test_url_trailing_slash_removed() -> None:
    settings = load_settings(environment(ARGUS_TWITCH_API_URL="http://127.0.0.1:9/"))

    assert settings.twitch_api_url == "http://127.0.0.1:9"


def test_log_level_case_insensitive() -> None:
    assert load_settings(environment(ARGUS_LOG_LEVEL="debug")).log_level == "DEBUG"
    assert load_settings(environment(ARGUS_LOG_LEVEL="Warning")).log_level == "WARNING"


@pytest.mark.parametrize(
    ("name", "value"),
    [("ARGUS_LOG_LEVEL", "verbose"), ("ARGUS_LOG_FORMAT", "xml")],
)
def test_bad_choice_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(environment(**{name: value}))


def test_log_format_json() -> None:
    assert load_settings(environment(ARGUS_LOG_FORMAT="JSON")).log_format == "json"


def test_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment(ARGUS_OWNER_ID="424242").items():
        monkeypatch.setenv(name, value)

    assert load_settings().owner_id == "424242"


@pytest.mark.parametrize("value", ["abc", "12a", "１２"])
def test_owner_id_must_be_numeric(value):
    with pytest.raises(ConfigError, match="ARGUS_OWNER_ID"):
        load_settings(environment(ARGUS_OWNER_ID=value))
