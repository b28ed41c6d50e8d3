"""Links between Argus tokens and Twitch channels.

Tokens are bearer secrets, so only their SHA-256 hashes are stored. The
channel's record ``links/channel/<id>`` is the single source of truth: it names
the one valid token hash. ``links/token/<hash>`` is an index from a token to its
channel. A lookup accepts the index only while the channel record still names
that hash. So an earlier token stops working the moment a new one is linked,
even if deleting its index object failed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from argus.store import ObjectStore
from argus.store import PreconditionFailed
from argus.store import StoredObject
from argus.store import encode_json

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "links/channel/"
TOKEN_PREFIX = "links/token/"

# 32 random bytes: 256 bits, in 43 URL-safe characters.
TOKEN_BYTES = 32
MAX_LINK_ATTEMPTS = 20
CACHE_SECONDS = 5.0
CACHE_MAX_ENTRIES = 10_000


def new_token() -> str:
    """Return a fresh Argus token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """Return the hex SHA-256 of a token, the only form in which it is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_log_id(token_hash: str) -> str:
    """Return a short prefix of a token hash that identifies it in logs."""
    return token_hash[:8]


@dataclass(frozen=True)
class Link:
    """A linked channel: its valid token hash and the profile shown to viewers."""

    channel_id: str
    token_hash: str
    username: str | None
    picture: str | None
    linked_at: float

    def to_json(self) -> dict:
        return {
            "channelId": self.channel_id,
            "tokenHash": self.token_hash,
            "username": self.username,
            "picture": self.picture,
            "linkedAt": self.linked_at,
        }

    @classmethod
    def from_json(cls, value: dict) -> Link:
        return cls(
            channel_id=str(value["channelId"]),
            token_hash=str(value["tokenHash"]),
            username=value.get("username"),
            picture=value.get("picture"),
            linked_at=float(value.get("linkedAt", 0)),
        )


class LinkRegistry:
    """Creates, looks up and erases token-to-channel links in the store."""

    def __init__(
        self, store: ObjectStore, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.clock = clock
        self._cache: dict[str, tuple[float, Link]] = {}
        self._cache_lock = threading.Lock()

    def link(
        self,
        channel_id: str,
        username: str | None = None,
        picture: str | None = None,
        token: str | None = None,
    ) -> str:
        """Link a channel to a new token, replacing its earlier one, and return it.

        ``token`` is only given when importing a token issued elsewhere.
        """
        token = token or new_token()
        token_hash = hash_token(token)
        self.store.put(
            TOKEN_PREFIX + token_hash, encode_json({"channelId": channel_id})
        )
        link = Link(channel_id, token_hash, username, picture, self.clock())
        replaced = self._replace_channel_record(link)

        if replaced is not None and replaced.token_hash != token_hash:
            self.store.delete(TOKEN_PREFIX + replaced.token_hash)
        log.info(
            "linked channel %s to token %s%s",
            channel_id,
            token_log_id(token_hash),
            f", replacing token {token_log_id(replaced.token_hash)}"
            if replaced
            else "",
        )
        return token

    def _replace_channel_record(self, link: Link) -> Link | None:
        """Write the channel record with a conditional write; return the old link."""
        key = CHANNEL_PREFIX + link.channel_id
        for _ in range(MAX_LINK_ATTEMPTS):
            current = self.store.get(key)
            try:
                if current is None:
                    self.store.put(key, encode_json(link.to_json()), if_absent=True)
                    return None
                self.store.put(
                    key, encode_json(link.to_json()), if_version=current.version
                )
                return _parse_link(current)
            except PreconditionFailed:
                # Another link of the same channel won the race; read it again
                # so that its token is the one replaced.
                continue
        raise PreconditionFailed(
            f"channel {link.channel_id} changed {MAX_LINK_ATTEMPTS} times while "
            "linking; try again"
        )

    def find_link(self, token: str) -> Link | None:
        """Return the link of a valid token, or None for any other token."""
        token_hash = hash_token(token)
        index = self.store.get(TOKEN_PREFIX + token_hash)
        if index is None:
            return None
        try:
            channel_id = str(index.json()["channelId"])
        except (ValueError, KeyError, TypeError):
            log.error("token index %s is malformed", token_log_id(token_hash))
            return None
        link = self.get_link(channel_id)
        if link is None or link.token_hash != token_hash:
            return None
        return link

    def find_link_cached(self, token: str) -> Link | None:
        """Return the link of a valid token, trusting a hit up to CACHE_SECONDS old.

        Only for the hot path of run updates: a replaced token may still post
        for up to CACHE_SECONDS in a process that looked it up just before.
        Unknown tokens are never cached, so a new link works at once.
        """
        now = time.monotonic()
        with self._cache_lock:
            cached = self._cache.get(token)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        link = self.find_link(token)
        with self._cache_lock:
            if link is None:
                self._cache.pop(token, None)
            else:
                if len(self._cache) >= CACHE_MAX_ENTRIES:
                    self._cache.clear()
                self._cache[token] = (now, link)
        return link

    def get_link(self, channel_id: str) -> Link | None:
        """Return a channel's link, or None when it never linked."""
        stored = self.store.get(CHANNEL_PREFIX + channel_id)
        return None if stored is None else _parse_link(stored)

    def list_links(self) -> list[Link]:
        """Return every linked channel, oldest link first."""
        links = []
        for key in self.store.list_keys(CHANNEL_PREFIX):
            stored = self.store.get(key)
            link = None if stored is None else _parse_link(stored)
            if link is not None:
                links.append(link)
        return sorted(links, key=lambda link: link.linked_at)

    def erase_all(self) -> int:
        """Delete every link and token index object; return how many links went."""
        channel_keys = self.store.list_keys(CHANNEL_PREFIX)
        for key in self.store.list_keys(TOKEN_PREFIX) + channel_keys:
            self.store.delete(key)
        return len(channel_keys)


def _parse_link(stored: StoredObject) -> Link | None:
    try:
        return Link.from_json(stored.json())
    except (ValueError, KeyError, TypeError) as error:
        log.error("stored link record is malformed: %s", error)
        return None


def describe_link(link: Link) -> str:
    """Format a link for operators, without its token hash."""
    linked_at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(link.linked_at))
    return json.dumps(
        {"channelId": link.channel_id, "username": link.username, "linkedAt": linked_at}
    )
