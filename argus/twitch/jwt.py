"""Extension JWTs: the ones the service signs for Twitch, and the ones it verifies.

Twitch signs and verifies extension JWTs with HS256, keyed with the
base64-decoded extension secret. Verification pins HS256, so a token cannot
pick its own algorithm (``none``, HS512, RS256 ...).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import jwt

ALGORITHM = "HS256"
# Twitch's own tokens are refreshed by the extension helper; a few seconds of
# leeway absorbs clock drift between Twitch and this server.
LEEWAY_SECONDS = 5
EBS_TOKEN_LIFETIME_SECONDS = 60


class InvalidExtensionToken(ValueError):
    """An extension JWT failed verification."""


def sign_broadcast_token(
    secret: bytes, owner_id: str, channel_id: str, now: float | None = None
) -> str:
    """Sign the token that authorises a pubsub broadcast to one channel."""
    issued = time.time() if now is None else now
    payload = {
        "exp": int(issued) + EBS_TOKEN_LIFETIME_SECONDS,
        "user_id": owner_id,
        "channel_id": channel_id,
        "role": "external",
        "pubsub_perms": {"send": ["broadcast"]},
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def verify_extension_token(token: str, secrets: Sequence[bytes]) -> dict[str, Any]:
    """Return the claims of a token signed with any of the secrets.

    ``exp`` is required. During a secret rotation several secrets are valid,
    so each is tried in turn.
    """
    if not token or len(token) > 4096:
        raise InvalidExtensionToken("missing or oversized token")
    last_error: Exception | None = None
    for secret in secrets:
        try:
            return jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp"]},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.InvalidSignatureError as error:
            last_error = error
        except jwt.PyJWTError as error:
            raise InvalidExtensionToken(str(error)) from error
    raise InvalidExtensionToken(str(last_error))


def channel_id_from_token(token: str, secrets: Sequence[bytes]) -> str:
    """Return the ``channel_id`` claim of a verified token."""
    claims = verify_extension_token(token, secrets)
    channel_id = claims.get("channel_id")
    # str.isdigit() alone also accepts digits such as "²" and "١".
    if not isinstance(channel_id, str) or not (
        channel_id.isascii() and channel_id.isdigit()
    ):
        raise InvalidExtensionToken("token has no numeric channel_id claim")
    return channel_id
