"""Tests of signing and verifying Twitch extension JWTs."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from argus.twitch.jwt import EBS_TOKEN_LIFETIME_SECONDS
from argus.twitch.jwt import LEEWAY_SECONDS
from argus.twitch.jwt import InvalidExtensionToken
from argus.twitch.jwt import channel_id_from_token
from argus.twitch.jwt import sign_broadcast_token
from argus.twitch.jwt import verify_extension_token

SECRET = b"secret-for-tests-only-do-not-use"
OLD_SECRET = b"previous-secret-still-accepted!!"
OTHER_SECRET = b"another-secret-of-thirty-two-byt"
OWNER = "100000001"
CHANNEL = "200000002"


def viewer_token(
    secret: bytes = SECRET, algorithm: str = "HS256", **claims: object
) -> str:
    """Sign a token like the ones Twitch gives the extension frontend."""
    payload = {
        "exp": int(time.time()) + 3600,
        "opaque_user_id": "U12345",
        "channel_id": CHANNEL,
        "role": "viewer",
    }
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    return jwt.encode(payload, secret, algorithm=algorithm)


def unsigned_token(payload: dict) -> str:
    """Build a token with ``alg: none`` and an empty signature."""

    def encode(value: dict) -> str:
        raw = json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return encode({"alg": "none", "typ": "JWT"}) + "." + encode(payload) + "."


def test_broadcast_token_claims() -> None:
    token = sign_broadcast_token(SECRET, OWNER, CHANNEL, now=1_700_000_000.5)

    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], options={"verify_exp": False}
    )
    assert claims["exp"] == 1_700_000_000 + EBS_TOKEN_LIFETIME_SECONDS
    assert claims["user_id"] == OWNER
    assert claims["channel_id"] == CHANNEL
    assert claims["role"] == "external"
    assert claims["pubsub_perms"] == {"send": ["broadcast"]}
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_broadcast_token_verifies() -> None:
    token = sign_broadcast_token(SECRET, OWNER, CHANNEL)

    claims = verify_extension_token(token, [SECRET])

    assert claims["channel_id"] == CHANNEL


def test_verify_viewer_token() -> None:
    claims = verify_extension_token(viewer_token(), [SECRET])

    assert claims["role"] == "viewer"
    assert claims["opaque_user_id"] == "U12345"


def test_verify_rotated_secret() -> None:
    token = viewer_token(secret=OLD_SECRET)

    claims = verify_extension_token(token, [SECRET, OLD_SECRET])

    assert claims["channel_id"] == CHANNEL


def test_verify_wrong_secret() -> None:
    with pytest.raises(InvalidExtensionToken):
        verify_extension_token(viewer_token(secret=OTHER_SECRET), [SECRET, OLD_SECRET])


def test_verify_no_secrets() -> None:
    with pytest.raises(InvalidExtensionToken):
        verify_extension_token(viewer_token(), [])


def test_verify_requires_exp() -> None:
    with pytest.raises(InvalidExtensionToken):
        verify_extension_token(viewer_token(exp=None), [SECRET])


def test_verify_non_numeric_exp() -> None:
    with pytest.raises(InvalidExtensionToken):
        verify_extension_token(viewer_token(exp="tomorrow"), [SECRET])


def test_verify_expired_within_leeway() -> None:
    token = viewer_token(exp=int(time.time()) - 1)

    assert verify_extension_token(token, [SECRET])["channel_id"] == CHANNEL


def test_verify_expired_beyond_leeway() -> None:
    token = viewer_token(exp=int(time.time()) - LEEWAY_SECONDS - 60)

    with pytest.raises(InvalidExtensionToken):
        verify_extension_token(token, [SECRET])


def test_verify_expired_rotated_secret() -> None:
    token = viewer_token(secret=OLD_SECRET, exp=int(time.time()) - 3600)

    with pytest.raises(InvalidExtensionToken):
        verify_extension_token(token, [SECRET, OLD_SECRET])


def test_verify_not_yet_valid() -> None:
    token = viewer_token(nbf=int(time.time()) + 3600)

    with pytest.raises(InvalidExtensionToken):
        verify_extension_token(token, [SECRET])


# PyJWT warns that a 32-byte key is short for HS384 and HS512.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_verify_other_algorithm(algorithm: str) -> None:
    token = viewer_token(algorithm=algorithm)

    with pytest.raises(InvalidExtensionToken):
        verify_extension_token(token, [SECRET])


def test_verify_alg_none() -> None:
    token = unsigned_token({"exp": int(time.time()) + 3600, "channel_id": CHANNEL})

    with pytest.raises(InvalidExtensionToken):
        verify_extension_token(token, [SECRET])


def test_verify_tampered_payload() -> None:
    header, _, signature = viewer_token().split(".")
    forged = jwt.encode(
        {"exp": int(time.time()) + 3600, "channel_id": "999"}, OTHER_SECRET
    ).split(".")[1]

    with pytest.raises(InvalidExtensionToken):
        verify_extension_token(f"{header}.{forged}.{signature}", [SECRET])


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "x" * 5000])
def test_verify_malformed(token: str) -> None:
    with pytest.raises(InvalidExtensionToken):
        verify_extension_token(token, [SECRET])


def test_verify_oversized() -> None:
    token = viewer_token(padding="x" * 4000)
    assert len(token) > 4096

    with pytest.raises(InvalidExtensionToken):
        verify_extension_token(token, [SECRET])


def test_channel_id_from_token() -> None:
    assert channel_id_from_token(viewer_token(), [SECRET]) == CHANNEL


@pytest.mark.parametrize(
    "channel_id", [None, "", "abc", "12a", "-12", 200000002, "１２", "١٢", "²"]
)
def test_channel_id_invalid(channel_id: object) -> None:
    token = viewer_token(channel_id=channel_id)
    if channel_id is None:
        assert "channel_id" not in jwt.decode(token, SECRET, algorithms=["HS256"])

    with pytest.raises(InvalidExtensionToken):
        channel_id_from_token(token, [SECRET])
