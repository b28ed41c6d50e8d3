"""The Send Extension PubSub Message endpoint of the Twitch API."""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests

from argus.twitch.jwt import sign_broadcast_token

PUBSUB_PATH = "/helix/extensions/pubsub"


@dataclass(frozen=True)
class PubsubAnswer:
    """Twitch's response to one message, with its rate-limit headers when present."""

    status: int
    ratelimit_remaining: int | None = None
    ratelimit_reset: float | None = None
    message: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == 204

    @property
    def retryable(self) -> bool:
        """Whether sending the same message again later may succeed."""
        return self.status == 429 or self.status >= 500


class PubsubError(Exception):
    """Sending a message failed before Twitch responded (connection, timeout)."""


class PubsubClient:
    """Sends broadcast messages to one extension's viewers on a channel."""

    def __init__(
        self,
        api_url: str,
        client_id: str,
        signing_secret: bytes,
        owner_id: str,
        timeout_seconds: float,
    ) -> None:
        self.url = api_url.rstrip("/") + PUBSUB_PATH
        self.client_id = client_id
        self._signing_secret = signing_secret
        self.owner_id = owner_id
        self.timeout_seconds = timeout_seconds
        self._session = requests.Session()
        # One connection per sending thread, so that none is opened and
        # dropped for each message.
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=32)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def send(self, channel_id: str, message: str) -> PubsubAnswer:
        """Send one message; raise PubsubError when no response arrived."""
        token = sign_broadcast_token(self._signing_secret, self.owner_id, channel_id)
        headers = {"Client-Id": self.client_id, "Authorization": f"Bearer {token}"}
        body = {
            "broadcaster_id": channel_id,
            "target": ["broadcast"],
            "message": message,
        }
        try:
            response = self._session.post(
                self.url, json=body, headers=headers, timeout=self.timeout_seconds
            )
        except requests.RequestException as error:
            raise PubsubError(f"{type(error).__name__} from {self.url}") from error
        return PubsubAnswer(
            status=response.status_code,
            ratelimit_remaining=_int_header(response, "Ratelimit-Remaining"),
            ratelimit_reset=_int_header(response, "Ratelimit-Reset"),
            message="" if response.status_code == 204 else response.text[:200].strip(),
        )

    def close(self) -> None:
        self._session.close()


def _int_header(response: requests.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


def seconds_until(epoch_seconds: float | None, now: float | None = None) -> float:
    """Return the seconds until a Unix time, never negative (0 when unknown)."""
    if epoch_seconds is None:
        return 0.0
    return max(0.0, epoch_seconds - (time.time() if now is None else now))
