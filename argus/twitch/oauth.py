"""Twitch's OAuth authorization-code exchange and OIDC userinfo endpoints."""

from __future__ import annotations

import re
from dataclasses import dataclass

import requests

from argus import metrics

TOKEN_PATH = "/oauth2/token"
USERINFO_PATH = "/oauth2/userinfo"

_USER_ID = re.compile(r"[0-9]{1,20}")
MAX_USERNAME_LENGTH = 64
MAX_PICTURE_LENGTH = 1024


class OAuthError(Exception):
    """Twitch rejected the exchange or did not respond; the message is safe to log."""


@dataclass(frozen=True)
class TwitchUser:
    """The streamer behind an access token."""

    user_id: str
    username: str | None
    picture: str | None


class OAuthClient:
    """Exchanges authorization codes and reads the user they belong to."""

    def __init__(
        self,
        auth_url: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        timeout_seconds: float,
    ) -> None:
        self.auth_url = auth_url.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.timeout_seconds = timeout_seconds
        self._session = requests.Session()

    def exchange_code(self, code: str) -> str:
        """Return the access token for an authorization code."""
        form = {
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "code": code,
            "grant_type": "authorization_code",
            "redirect_uri": self.redirect_uri,
        }
        body = self._call("token", "POST", TOKEN_PATH, data=form)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise OAuthError("token endpoint returned no access_token")
        return token

    def fetch_user(self, access_token: str) -> TwitchUser:
        """Return the user an access token belongs to, from OIDC userinfo."""
        headers = {"Authorization": f"Bearer {access_token}"}
        claims = self._call("userinfo", "GET", USERINFO_PATH, headers=headers)
        user_id = claims.get("sub")
        if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
            raise OAuthError("userinfo returned no numeric sub claim")
        return TwitchUser(
            user_id=user_id,
            username=_clean_username(claims.get("preferred_username")),
            picture=_clean_picture(claims.get("picture")),
        )

    def _call(self, name: str, method: str, path: str, **arguments) -> dict:
        try:
            response = self._session.request(
                method,
                self.auth_url + path,
                timeout=self.timeout_seconds,
                **arguments,
            )
        except requests.Timeout:
            metrics.TWITCH_ANSWERS.labels(name, "error").inc()
            raise OAuthError(
                f"{name} endpoint timed out after {self.timeout_seconds:g}s"
            ) from None
        except requests.RequestException as error:
            metrics.TWITCH_ANSWERS.labels(name, "error").inc()
            raise OAuthError(
                f"{name} endpoint unreachable: {type(error).__name__}"
            ) from None
        metrics.TWITCH_ANSWERS.labels(name, str(response.status_code)).inc()
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            message = body.get("message") if isinstance(body, dict) else None
            raise OAuthError(
                f"{name} endpoint returned {response.status_code}: "
                f"{str(message or 'no JSON body')[:120]}"
            )
        return body


def _clean_username(value: object) -> str | None:
    # The dashboard shows the name, so markup characters are never kept.
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_USERNAME_LENGTH:
        return None
    if any(character in value for character in "<>&\"'`") or not value.isprintable():
        return None
    return value


def _clean_picture(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > MAX_PICTURE_LENGTH:
        return None
    if not value.startswith("https://") or any(c in value for c in "<>\"' \\`"):
        return None
    return value
