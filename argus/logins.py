"""Pending logins: a streamer approved on Twitch, the client has not claimed yet.

The client invents ``state`` (32 hex characters), sends it through Twitch's
authorize page and then polls with it. Any client that knows ``state`` can
claim the login, so it is treated like a password. Objects are stored under
its SHA-256, and it is never logged.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from argus.links import LinkRegistry
from argus.store import ObjectStore
from argus.store import PreconditionFailed
from argus.store import StoredObject
from argus.store import encode_json
from argus.twitch.oauth import TwitchUser

log = logging.getLogger(__name__)

PENDING_PREFIX = "pending/"
# The client polls for 60 s; ten minutes also covers a slow browser.
PENDING_LIFETIME_SECONDS = 10 * 60
STATE_PATTERN = re.compile(r"[0-9a-fA-F]{32}")


def is_valid_state(value: object) -> bool:
    return isinstance(value, str) and STATE_PATTERN.fullmatch(value) is not None


def _pending_key(state: str) -> str:
    return PENDING_PREFIX + hashlib.sha256(state.lower().encode()).hexdigest()


def state_log_id(state: str) -> str:
    """Return a short id of a state for logs, which cannot be used to claim it."""
    return hashlib.sha256(state.lower().encode()).hexdigest()[:8]


def _xor_with_state_stream(data: bytes, state: str) -> bytes:
    stream = hashlib.shake_256(b"argus-pending-token:" + state.lower().encode())
    return bytes(a ^ b for a, b in zip(data, stream.digest(len(data)), strict=True))


def seal_token(token: str, state: str) -> str:
    """Encrypt a token so that only the holder of ``state`` can read it back.

    Only imported legacy logins carry a token before they are claimed. The
    key stream is SHAKE-256 of the state, which is never stored.
    """
    return _xor_with_state_stream(token.encode(), state).hex()


def unseal_token(sealed: str, state: str) -> str:
    return _xor_with_state_stream(bytes.fromhex(sealed), state).decode()


@dataclass(frozen=True)
class ClaimedLogin:
    """The result of a successful claim: the new token and the profile picture."""

    token: str
    channel_id: str
    picture: str | None


class PendingLogins:
    """Records approved logins under their state and lets a client claim one once."""

    def __init__(
        self,
        store: ObjectStore,
        links: LinkRegistry,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.links = links
        self.clock = clock

    def record(self, state: str, user: TwitchUser, sealed_token: str = "") -> None:
        """Record an approved login; a newer login with the same state replaces it."""
        record = {
            "channelId": user.user_id,
            "username": user.username,
            "picture": user.picture,
            "createdAt": self.clock(),
            "claimed": False,
        }
        if sealed_token:
            record["sealedToken"] = sealed_token
        self.store.put(_pending_key(state), encode_json(record))
        log.info(
            "pending login %s recorded for channel %s",
            state_log_id(state),
            user.user_id,
        )

    def claim(self, state: str) -> ClaimedLogin | None:
        """Link the login's channel and return its new token, or None.

        None covers an unknown, expired or already claimed state. The claim
        marks the record with a conditional write first, so two polls racing
        for one state cannot both receive a token.
        """
        key = _pending_key(state)
        stored = self.store.get(key)
        record = _parse(stored)
        if stored is None or record is None or record.get("claimed"):
            return None
        if self.clock() - float(record.get("createdAt", 0)) > PENDING_LIFETIME_SECONDS:
            self.store.delete(key)
            log.info("pending login %s expired", state_log_id(state))
            return None

        claimed = dict(record, claimed=True)
        try:
            self.store.put(key, encode_json(claimed), if_version=stored.version)
        except PreconditionFailed:
            return None

        channel_id = str(record["channelId"])
        picture = record.get("picture")
        legacy_token = (
            unseal_token(record["sealedToken"], state)
            if record.get("sealedToken")
            else None
        )
        try:
            token = self.links.link(
                channel_id,
                username=record.get("username"),
                picture=picture,
                token=legacy_token,
            )
        except Exception:
            # Give the record back, so that the client's next poll can claim it.
            self.store.put(key, encode_json(record))
            raise
        self.store.delete(key)
        log.info(
            "pending login %s claimed by channel %s", state_log_id(state), channel_id
        )
        return ClaimedLogin(token=token, channel_id=channel_id, picture=picture)

    def erase_all(self) -> int:
        keys = self.store.list_keys(PENDING_PREFIX)
        for key in keys:
            self.store.delete(key)
        return len(keys)


def _parse(stored: StoredObject | None) -> dict | None:
    if stored is None:
        return None
    try:
        record = stored.json()
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("channelId"), str):
        log.error("a pending login record is malformed")
        return None
    return record
