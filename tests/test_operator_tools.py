"""Operator commands: link, print-tokens, erase-tokens and migrate-legacy."""

from __future__ import annotations

import json
import secrets

import pytest

from argus import create_app
from argus.config import load_settings
from argus.legacy import LEGACY_PENDING_KEY
from argus.legacy import LEGACY_TOKENS_KEY
from argus.links import CHANNEL_PREFIX
from argus.links import TOKEN_PREFIX
from argus.links import LinkRegistry
from argus.links import hash_token
from argus.logins import PENDING_PREFIX
from argus.store import open_store
from argus.twitch.oauth import TwitchUser
from tests.conftest import link_channel
from tests.conftest import publish_sample_mappings
from tests.test_linking import new_state
from tests.test_linking import new_user_id

EMPTY_RUN = {"argusProtocolVersion": "2", "runData": {}}


def invoke(runner, *args: str):
    return runner.invoke(args=["argus", *args])


def check_token(client, token: str) -> str:
    return client.get("/check_argus_token", query_string={"argus_token": token}).text


def post_run(client, token: str) -> str:
    return client.post("/run_info", json=dict(EMPTY_RUN, argusToken=token)).text


def claim(client, state: str, version: str = "1") -> str:
    body = {"argusProtocolVersion": version, "state": state}
    return client.post("/get_argus_token", json=body).text


def last_line(result) -> str:
    return result.stdout.strip().splitlines()[-1]


# --- link ------------------------------------------------------------------------


def test_link_prints_token_last(runner, client, channel_id):
    first = invoke(runner, "link", channel_id, "--username", "Operator")
    second = invoke(runner, "link", channel_id)

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    old_token, new_token = last_line(first), last_line(second)
    assert old_token != new_token
    assert len(new_token) >= 22
    assert check_token(client, old_token) == "token_not_ok"
    assert check_token(client, new_token) == "token_ok"


@pytest.mark.parametrize("channel", ["abc", "-5", "1" * 21, ""])
def test_link_rejects_bad_channel(runner, app, channel):
    result = invoke(runner, "link", channel)

    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert app.extensions["argus"].store.list_keys(CHANNEL_PREFIX) == []


def test_link_command_subprocess(service_env, channel_id):
    token = link_channel(service_env, channel_id, "--username", "Shell")

    link = LinkRegistry(open_store(service_env["ARGUS_STORE"])).find_link(token)
    assert link is not None
    assert link.channel_id == channel_id
    assert link.username == "Shell"


# --- print-tokens ----------------------------------------------------------------


def test_print_tokens_hides_tokens(runner, app):
    links = app.extensions["argus"].links
    tokens = {
        "FirstStreamer": links.link(new_user_id(), username="FirstStreamer"),
        "SecondStreamer": links.link(new_user_id(), username="SecondStreamer"),
    }

    result = invoke(runner, "print-tokens")

    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3
    assert lines[-1] == "2 linked channels"
    entries = [json.loads(line) for line in lines[:-1]]
    assert {entry["username"] for entry in entries} == set(tokens)
    for entry in entries:
        assert entry["linkedAt"].endswith("UTC")
        assert set(entry) == {"channelId", "username", "linkedAt"}
    for token in tokens.values():
        assert token not in result.output
        assert hash_token(token) not in result.output
        assert hash_token(token)[:8] not in result.output


def test_print_tokens_empty_store(runner):
    result = invoke(runner, "print-tokens")

    assert result.exit_code == 0
    assert result.stdout.strip() == "0 linked channels"


# --- erase-tokens ----------------------------------------------------------------


def test_erase_tokens_needs_confirmation(runner, client, app, channel_id):
    token = app.extensions["argus"].links.link(channel_id)

    result = invoke(runner, "erase-tokens")

    assert result.exit_code == 2
    assert "--yes-erase-all" in result.output
    assert check_token(client, token) == "token_ok"


def test_erase_tokens_erases_all(runner, client, app, channel_id):
    argus = app.extensions["argus"]
    token = argus.links.link(channel_id)
    state = new_state()
    argus.logins.record(state, TwitchUser(new_user_id(), "Pending", None))

    result = invoke(runner, "erase-tokens", "--yes-erase-all")

    assert result.exit_code == 0, result.output
    assert "erased 1 links, 1 pending logins and 0 legacy" in result.stdout
    assert check_token(client, token) == "token_not_ok"
    assert claim(client, state) == "FAIL"
    assert argus.store.list_keys(CHANNEL_PREFIX) == []
    assert argus.store.list_keys(TOKEN_PREFIX) == []
    assert argus.store.list_keys(PENDING_PREFIX) == []


# --- migrate-legacy --------------------------------------------------------------


@pytest.fixture
def store_app(service_env, store_url):
    """An in-process app on a fresh store of each kind, SQLite and S3."""
    env = dict(service_env, ARGUS_STORE=store_url)
    publish_sample_mappings(store_url)
    application = create_app(load_settings(env), {"TESTING": True})
    yield application
    application.extensions["argus"].shutdown(timeout=5)


class Legacy:
    """Objects in the original service's layout, with fresh ids and tokens."""

    def __init__(self) -> None:
        suffix = new_state()
        self.channel = new_user_id()
        self.int_channel = new_user_id()
        self.pending_channel = new_user_id()
        self.token = f"legacytoken-abc{suffix}"
        self.int_token = f"legacytoken-def{suffix}"
        self.pending_token = f"legacy-pending-token-{suffix}"
        self.state = new_state()

    def tokens_map(self) -> dict:
        # The original service wrote ids as strings; a number must work too.
        return {self.token: self.channel, self.int_token: int(self.int_channel)}

    def pending_map(self) -> dict:
        login = {"twitchId": self.pending_channel, "argusToken": self.pending_token}
        return {self.state: login}

    def put(self, app) -> None:
        store = app.extensions["argus"].store
        store.put(LEGACY_TOKENS_KEY, json.dumps(self.tokens_map()).encode())
        store.put(LEGACY_PENDING_KEY, json.dumps(self.pending_map()).encode())


@pytest.fixture
def legacy(store_app) -> Legacy:
    objects = Legacy()
    objects.put(store_app)
    return objects


def test_migrate_legacy_tokens_work(store_app, legacy):
    client = store_app.test_client()

    result = invoke(store_app.test_cli_runner(), "migrate-legacy")

    assert result.exit_code == 0, result.output
    assert "imported 2 links and 1 pending logins" in result.stdout
    for token in (legacy.token, legacy.int_token):
        assert check_token(client, token) == "token_ok"
        assert post_run(client, token) == "ok"
    links = store_app.extensions["argus"].links
    assert links.find_link(legacy.token).channel_id == legacy.channel
    assert links.find_link(legacy.int_token).channel_id == legacy.int_channel


def test_migrate_legacy_pending_claimable(store_app, legacy):
    client = store_app.test_client()
    invoke(store_app.test_cli_runner(), "migrate-legacy")

    before_claim = check_token(client, legacy.pending_token)
    claimed = claim(client, legacy.state)

    assert before_claim == "token_not_ok"
    assert claimed == legacy.pending_token
    assert check_token(client, legacy.pending_token) == "token_ok"
    assert post_run(client, legacy.pending_token) == "ok"
    assert claim(client, legacy.state) == "FAIL"


def test_migrate_legacy_pending_protocol_2(store_app, legacy):
    client = store_app.test_client()
    invoke(store_app.test_cli_runner(), "migrate-legacy")

    claimed = claim(client, legacy.state, version="2")

    assert claimed.split("\n") == [legacy.pending_token, ""]


def test_migrate_legacy_stores_no_clear_token(store_app, legacy):
    store = store_app.extensions["argus"].store
    invoke(store_app.test_cli_runner(), "migrate-legacy")

    keys = store.list_keys(CHANNEL_PREFIX) + store.list_keys(TOKEN_PREFIX)
    keys += store.list_keys(PENDING_PREFIX)
    assert len(keys) == 5
    for key in keys:
        body = store.get(key).body.decode()
        for token in (legacy.token, legacy.int_token, legacy.pending_token):
            assert token not in key
            assert token not in body, key
        assert legacy.state not in body, key


MALFORMED = {
    "tokens not json": (LEGACY_TOKENS_KEY, b"{not json"),
    "tokens a list": (LEGACY_TOKENS_KEY, b'["a", "b"]'),
    "tokens a string": (LEGACY_TOKENS_KEY, b'"token"'),
    "tokens not utf-8": (LEGACY_TOKENS_KEY, b'{"\xff": "1"}'),
    "pending not json": (LEGACY_PENDING_KEY, b"{oops"),
    "pending a list": (LEGACY_PENDING_KEY, b"[]"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_migrate_legacy_malformed_object(app, runner, case):
    key, body = MALFORMED[case]
    app.extensions["argus"].store.put(key, body)

    result = invoke(runner, "migrate-legacy")

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.output.startswith("Error:")
    assert key in result.output
    assert app.extensions["argus"].store.list_keys(CHANNEL_PREFIX) == []


def test_migrate_legacy_skips_bad_entries(app, runner, client):
    good_token = "legacytoken-good-" + new_state()
    tokens = {
        good_token: "1234",
        "legacytoken-bad-channel": "not-a-number",
        "legacytoken-list": ["1235"],
        "legacytoken-null": None,
    }
    pending = {
        "not-a-state": {"twitchId": "1236", "argusToken": "legacy-x"},
        new_state(): "not an object",
        new_state(): {"twitchId": "1237"},
        new_state(): {"twitchId": None, "argusToken": "legacy-y"},
    }
    store = app.extensions["argus"].store
    store.put(LEGACY_TOKENS_KEY, json.dumps(tokens).encode())
    store.put(LEGACY_PENDING_KEY, json.dumps(pending).encode())

    result = invoke(runner, "migrate-legacy")

    assert result.exit_code == 0, result.output
    assert "imported 1 links and 0 pending logins" in result.stdout
    assert "skipped 7 malformed entries" in result.stdout
    assert check_token(client, good_token) == "token_ok"


def test_migrate_legacy_missing_objects(runner):
    result = invoke(runner, "migrate-legacy")

    assert result.exit_code == 0, result.output
    assert "imported 0 links and 0 pending logins" in result.stdout


def test_migrate_legacy_twice_keeps_relink(store_app, legacy):
    client = store_app.test_client()
    runner = store_app.test_cli_runner()
    invoke(runner, "migrate-legacy")
    relinked = last_line(invoke(runner, "link", legacy.channel))

    second = invoke(runner, "migrate-legacy")

    assert second.exit_code == 0, second.output
    assert "skipped 2 channels already linked" in second.stdout
    assert check_token(client, relinked) == "token_ok"
    assert check_token(client, legacy.token) == "token_not_ok"
    assert check_token(client, legacy.int_token) == "token_ok"


def test_migrate_legacy_twice_keeps_claim(store_app, legacy):
    client = store_app.test_client()
    runner = store_app.test_cli_runner()
    invoke(runner, "migrate-legacy")
    assert claim(client, legacy.state) == legacy.pending_token
    relinked = last_line(invoke(runner, "link", legacy.pending_channel))

    second = invoke(runner, "migrate-legacy")

    assert second.exit_code == 0, second.output
    assert claim(client, legacy.state) == "FAIL"
    assert check_token(client, relinked) == "token_ok"
    assert check_token(client, legacy.pending_token) == "token_not_ok"


def test_migrate_legacy_replace_existing(app, runner, client, channel_id):
    relinked = app.extensions["argus"].links.link(channel_id)
    legacy_token = "legacytoken-replace-" + new_state()
    app.extensions["argus"].store.put(
        LEGACY_TOKENS_KEY, json.dumps({legacy_token: channel_id}).encode()
    )

    skipping_run = invoke(runner, "migrate-legacy")
    token_after_skipping = check_token(client, relinked)
    replacing_run = invoke(runner, "migrate-legacy", "--replace-existing")

    assert "skipped 1 channels already linked" in skipping_run.stdout
    assert token_after_skipping == "token_ok"
    assert "imported 1 links" in replacing_run.stdout
    assert check_token(client, legacy_token) == "token_ok"
    assert check_token(client, relinked) == "token_not_ok"


def test_erase_tokens_stops_legacy_reimport(runner, client, app, channel_id):
    argus = app.extensions["argus"]
    legacy_token = "legacy-erased-" + secrets.token_hex(8)
    argus.store.put(
        "twitchIdByArgusToken", json.dumps({legacy_token: channel_id}).encode()
    )
    assert invoke(runner, "migrate-legacy").exit_code == 0
    assert check_token(client, legacy_token) == "token_ok"

    result = invoke(runner, "erase-tokens", "--yes-erase-all")
    again = invoke(runner, "migrate-legacy")

    assert "1 legacy token objects" in result.stdout
    assert again.exit_code == 0
    assert check_token(client, legacy_token) == "token_not_ok"
