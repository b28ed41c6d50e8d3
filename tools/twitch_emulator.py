"""Emulate the Twitch endpoints that argus-backend calls, for tests and local runs.

One HTTP server provides extension pubsub (POST /helix/extensions/pubsub), the OAuth
authorization code flow (/oauth2/authorize, /oauth2/token) and OIDC userinfo
(/oauth2/userinfo). Endpoints under /emulator/ let tests read the accepted pubsub
messages and the status counts, queue faults and reset the state. All state is kept
in memory.

Run it with:

    python tools/twitch_emulator.py --port 8081

The environment must contain ARGUS_TWITCH_ID, ARGUS_CLIENT_SECRET and
ARGUS_EXTENSION_SECRET (base64, several separated by commas), and may contain
ARGUS_OWNER_ID. Importing this module starts nothing: call create_app() or main().
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import hmac
import html
import json
import logging
import math
import os
import secrets
import signal
import sys
import threading
import time
from collections import Counter
from collections import defaultdict
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from http import HTTPStatus
from typing import Any
from typing import NoReturn
from urllib.parse import parse_qsl
from urllib.parse import urlencode
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import jwt
from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import jsonify
from flask import request
from werkzeug.serving import make_server

logger = logging.getLogger("twitch_emulator")

ISSUER = "https://id.twitch.tv/oauth2"
DEFAULT_USER_ID = "123456789"
DEFAULT_USERNAME = "EmulatedStreamer"
DEFAULT_PICTURE = (
    "https://static-cdn.jtvnw.net/user-default-pictures-uv/emulator-300x300.png"
)

# Endpoint names used as keys in /emulator/stats and in fault requests.
PUBSUB = "pubsub"
OAUTH_AUTHORIZE = "oauth_authorize"
OAUTH_TOKEN = "oauth_token"
USERINFO = "userinfo"
STATS_ENDPOINTS = (PUBSUB, OAUTH_AUTHORIZE, OAUTH_TOKEN, USERINFO)
FAULT_ENDPOINTS = (PUBSUB, OAUTH_TOKEN, USERINFO)

# Upper bounds for one fault request, so that a typo cannot stall the emulator.
MAX_FAULT_DELAY_MS = 120_000
MAX_FAULT_COUNT = 10_000

# Twitch accepts an EBS JWT for a broadcast when its send list has either entry.
BROADCAST_PERMISSIONS = ("broadcast", "*")
WRONG_CHANNEL = "Error (403): Wrong channel requested"
JWT_NOT_VERIFIED = "Error (403): JWT could not be verified"

PREFIX_LENGTH = 4  # characters of a code or token that may appear in the log


# --- Configuration ---------------------------------------------------------------


class ConfigError(ValueError):
    """Invalid or missing emulator setting."""


@dataclass(frozen=True)
class TwitchUser:
    """Twitch account that approves the authorization request."""

    user_id: str = DEFAULT_USER_ID
    username: str = DEFAULT_USERNAME
    picture: str = DEFAULT_PICTURE


@dataclass(frozen=True)
class EmulatorConfig:
    """Secrets, the default user and the limits of one emulator instance."""

    client_id: str
    client_secret: str
    extension_secrets: tuple[bytes, ...]
    owner_id: str | None = None
    user: TwitchUser = field(default_factory=TwitchUser)
    max_message_bytes: int = 5120
    rate_capacity: int = 100
    rate_refill_per_second: float = 1.0
    token_delay_ms: int = 0
    code_lifetime_seconds: float = 600.0
    access_token_lifetime_seconds: int = 14_400

    def fixed_delay_ms(self, endpoint: str) -> int:
        """Return the delay that every call to `endpoint` waits before it runs."""
        return self.token_delay_ms if endpoint == OAUTH_TOKEN else 0


def parse_extension_secrets(text: str) -> tuple[bytes, ...]:
    """Decode the comma-separated base64 extension secrets into HMAC keys."""
    keys = []
    for position, item in enumerate(text.split(","), start=1):
        try:
            key = base64.b64decode(item.strip(), validate=True)
        except binascii.Error:
            key = b""
        if not key:
            raise ConfigError(
                f"ARGUS_EXTENSION_SECRET item {position} is not valid base64 text. "
                "Copy the secret as the extension console shows it."
            )
        keys.append(key)
    return tuple(keys)


def require_variable(environ: Mapping[str, str], name: str, meaning: str) -> str:
    """Return the environment variable `name` or raise ConfigError naming it."""
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"missing environment variable {name}. Set it to {meaning}.")
    return value


def build_config(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> EmulatorConfig:
    """Combine the command-line options and the environment into a config."""
    client_id = require_variable(environ, "ARGUS_TWITCH_ID", "the Twitch client ID")
    client_secret = require_variable(
        environ, "ARGUS_CLIENT_SECRET", "the Twitch client secret"
    )
    extension_secret = require_variable(
        environ, "ARGUS_EXTENSION_SECRET", "the base64 extension secret"
    )
    return EmulatorConfig(
        client_id=client_id,
        client_secret=client_secret,
        extension_secrets=parse_extension_secrets(extension_secret),
        owner_id=environ.get("ARGUS_OWNER_ID", "").strip() or None,
        user=TwitchUser(args.user_id, args.username, args.picture),
        max_message_bytes=args.max_message_bytes,
        rate_capacity=args.rate_capacity,
        rate_refill_per_second=args.rate_refill_per_second,
        token_delay_ms=args.token_delay_ms,
        code_lifetime_seconds=args.code_lifetime_seconds,
        access_token_lifetime_seconds=args.access_token_lifetime_seconds,
    )


# --- In-memory state -------------------------------------------------------------


class TokenBucket:
    """Rate-limit bucket of one channel that refills continuously."""

    def __init__(self, capacity: int, refill_per_second: float, now: float) -> None:
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self.points = float(capacity)
        self.updated_at = now

    def refill(self, now: float) -> None:
        """Add the points earned since the last update, up to the capacity."""
        elapsed = max(0.0, now - self.updated_at)
        earned = elapsed * self.refill_per_second
        self.points = min(float(self.capacity), self.points + earned)
        self.updated_at = now

    def try_consume(self, now: float) -> bool:
        """Take one point and return True, or return False when none is left."""
        self.refill(now)
        if self.points < 1.0:
            return False
        self.points -= 1.0
        return True

    def headers(self, now: float, remaining: int | None = None) -> dict[str, str]:
        """Return the Ratelimit-* headers for the current state of the bucket."""
        missing = self.capacity - self.points
        # Rounded up so that a client waiting until the reset finds a full bucket.
        reset_at = math.ceil(now + missing / self.refill_per_second)
        if remaining is None:
            remaining = int(self.points)
        return {
            "Ratelimit-Limit": str(self.capacity),
            "Ratelimit-Remaining": str(remaining),
            "Ratelimit-Reset": str(reset_at),
        }


class RateLimiter:
    """Token buckets of the pubsub endpoint, one per broadcaster ID."""

    def __init__(self, capacity: int, refill_per_second: float) -> None:
        self._capacity = capacity
        self._refill_per_second = refill_per_second
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, broadcaster_id: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(broadcaster_id)
        if bucket is None:
            bucket = TokenBucket(self._capacity, self._refill_per_second, now)
            self._buckets[broadcaster_id] = bucket
        return bucket

    def consume(self, broadcaster_id: str) -> tuple[bool, dict[str, str]]:
        """Take one point of the channel's bucket and return success and headers."""
        now = time.time()
        with self._lock:
            bucket = self._bucket(broadcaster_id, now)
            allowed = bucket.try_consume(now)
            return allowed, bucket.headers(now)

    def empty_headers(self, broadcaster_id: str | None) -> dict[str, str]:
        """Return headers that report no points left without draining the bucket."""
        now = time.time()
        with self._lock:
            if broadcaster_id is None:
                bucket = TokenBucket(self._capacity, self._refill_per_second, now)
            else:
                bucket = self._bucket(broadcaster_id, now)
            bucket.refill(now)
            return bucket.headers(now, remaining=0)

    def clear(self) -> None:
        """Refill every channel by forgetting all buckets."""
        with self._lock:
            self._buckets.clear()


@dataclass(frozen=True)
class Fault:
    """Queued fault: a delay, a forced status or both, for the next `count` calls."""

    endpoint: str
    status: int | None
    delay_ms: int
    count: int

    def to_json(self) -> dict[str, Any]:
        """Return the fault as a JSON object."""
        return {
            "endpoint": self.endpoint,
            "status": self.status,
            "delay_ms": self.delay_ms,
            "count": self.count,
        }


def read_bounded_int(value: Any, key: str, low: int, high: int) -> int:
    """Return `value` if it is an int in [low, high], else raise ValueError."""
    # bool is a subclass of int, but `true` is never a valid status or count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{key} must be between {low} and {high}, got {value}")
    return value


def parse_fault(data: Any) -> Fault:
    """Validate a fault request body and return the fault or raise ValueError."""
    if not isinstance(data, dict):
        raise ValueError("fault must be a JSON object")
    unknown = sorted(set(data) - {"endpoint", "status", "delay_ms", "count"})
    if unknown:
        raise ValueError(f"unknown fault fields: {', '.join(unknown)}")
    if "status" not in data and "delay_ms" not in data:
        raise ValueError("fault needs a status, a delay_ms or both")
    endpoint = data.get("endpoint", PUBSUB)
    if endpoint not in FAULT_ENDPOINTS:
        names = ", ".join(FAULT_ENDPOINTS)
        raise ValueError(f"endpoint must be one of {names}, got {endpoint!r}")
    status = None
    if "status" in data:
        status = read_bounded_int(data["status"], "status", 400, 599)
    delay_ms = read_bounded_int(
        data.get("delay_ms", 0), "delay_ms", 0, MAX_FAULT_DELAY_MS
    )
    count = read_bounded_int(data.get("count", 1), "count", 1, MAX_FAULT_COUNT)
    return Fault(endpoint, status, delay_ms, count)


class FaultQueue:
    """Faults waiting to be applied, in the order they were queued."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> list[dict[str, Any]]:
        """Queue a fault and return the whole queue as JSON objects."""
        with self._lock:
            self._faults.append(fault)
            return [queued.to_json() for queued in self._faults]

    def pending(self) -> list[dict[str, Any]]:
        """Return the queue as JSON objects."""
        with self._lock:
            return [queued.to_json() for queued in self._faults]

    def take(self, endpoint: str) -> Fault | None:
        """Use up one call of the oldest fault queued for `endpoint`, if any."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.endpoint != endpoint:
                    continue
                if fault.count == 1:
                    del self._faults[index]
                else:
                    self._faults[index] = replace(fault, count=fault.count - 1)
                return fault
        return None

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()


class StatusCounter:
    """Number of responses per endpoint and HTTP status."""

    def __init__(self) -> None:
        self._counts: dict[str, Counter[int]] = defaultdict(Counter)
        self._lock = threading.Lock()

    def count(self, endpoint: str, status: int) -> None:
        """Add one response with `status` to the count of `endpoint`."""
        with self._lock:
            self._counts[endpoint][status] += 1

    def to_json(self) -> dict[str, dict[str, int]]:
        """Return the counts keyed by endpoint, then by status as a string."""
        with self._lock:
            return {
                endpoint: {
                    str(status): total
                    for status, total in sorted(self._counts[endpoint].items())
                }
                for endpoint in STATS_ENDPOINTS
            }

    def clear(self) -> None:
        """Reset every count to zero."""
        with self._lock:
            self._counts.clear()


@dataclass(frozen=True)
class PubsubRecord:
    """Pubsub message that the emulator accepted."""

    broadcaster_id: str
    message: str
    received_at: float


class PubsubLedger:
    """Accepted pubsub messages in arrival order."""

    def __init__(self) -> None:
        self._records: list[PubsubRecord] = []
        self._lock = threading.Lock()

    def record(self, broadcaster_id: str, message: str) -> None:
        """Store an accepted message with the current time."""
        with self._lock:
            self._records.append(PubsubRecord(broadcaster_id, message, time.time()))

    def to_json(self, broadcaster_id: str | None) -> list[dict[str, Any]]:
        """Return one channel's messages, or every message with its broadcaster ID."""
        with self._lock:
            records = list(self._records)
        if broadcaster_id is not None:
            return [
                {"message": item.message, "received_at": item.received_at}
                for item in records
                if item.broadcaster_id == broadcaster_id
            ]
        return [
            {
                "broadcaster_id": item.broadcaster_id,
                "message": item.message,
                "received_at": item.received_at,
            }
            for item in records
        ]

    def clear(self) -> None:
        """Forget every recorded message."""
        with self._lock:
            self._records.clear()


@dataclass(frozen=True)
class AuthorizationGrant:
    """Approval given on /oauth2/authorize, stored under its code."""

    user: TwitchUser
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    userinfo_claims: frozenset[str]
    id_token_claims: frozenset[str]
    nonce: str | None
    created_at: float


@dataclass(frozen=True)
class AccessGrant:
    """Access token issued by /oauth2/token and the grant behind it."""

    access_token: str
    refresh_token: str
    grant: AuthorizationGrant
    issued_at: int
    expires_at: int


class OAuthStore:
    """Authorization codes and access tokens issued by the emulator."""

    def __init__(self, code_lifetime_seconds: float, token_lifetime_seconds: int):
        self._code_lifetime_seconds = code_lifetime_seconds
        self._token_lifetime_seconds = token_lifetime_seconds
        self._codes: dict[str, AuthorizationGrant] = {}
        self._tokens: dict[str, AccessGrant] = {}
        self._lock = threading.Lock()

    def issue_code(self, grant: AuthorizationGrant) -> str:
        """Store the grant under a new random code and return the code."""
        # Twitch codes and tokens are 30 lower-case letters and digits.
        code = secrets.token_hex(15)
        with self._lock:
            self._drop_expired_codes(grant.created_at)
            self._codes[code] = grant
        return code

    def _drop_expired_codes(self, now: float) -> None:
        expired = [
            code
            for code, grant in self._codes.items()
            if now - grant.created_at > self._code_lifetime_seconds
        ]
        for code in expired:
            del self._codes[code]

    def redeem_code(self, code: str) -> AuthorizationGrant | None:
        """Remove the code and return its grant, or None if unknown or expired.

        Every attempt that names a known code uses it up, the failed ones included.
        """
        with self._lock:
            grant = self._codes.pop(code, None)
        if grant is None:
            return None
        if time.time() - grant.created_at > self._code_lifetime_seconds:
            return None
        return grant

    def issue_tokens(self, grant: AuthorizationGrant) -> AccessGrant:
        """Create and store an access token and a refresh token for the grant."""
        issued_at = int(time.time())
        access = AccessGrant(
            access_token=secrets.token_hex(15),
            refresh_token=secrets.token_hex(25),
            grant=grant,
            issued_at=issued_at,
            expires_at=issued_at + self._token_lifetime_seconds,
        )
        with self._lock:
            self._tokens[access.access_token] = access
        return access

    def find_token(self, access_token: str) -> AccessGrant | None:
        """Return the grant of an access token that exists and has not expired."""
        with self._lock:
            access = self._tokens.get(access_token)
        if access is None or time.time() >= access.expires_at:
            return None
        return access


class EmulatorState:
    """All mutable state of one emulator instance. Each part has its own lock."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.limiter = RateLimiter(config.rate_capacity, config.rate_refill_per_second)
        self.faults = FaultQueue()
        self.stats = StatusCounter()
        self.ledger = PubsubLedger()
        self.oauth = OAuthStore(
            config.code_lifetime_seconds, config.access_token_lifetime_seconds
        )
        # id_tokens are signed with a random key of this process, so clients cannot
        # verify them and must read the user from /oauth2/userinfo instead.
        self.id_token_key = secrets.token_bytes(32)

    def reset(self) -> None:
        """Clear records, stats, rate-limit buckets and faults.

        OAuth codes and access tokens survive, so a reset does not break a login
        that is in progress.
        """
        self.ledger.clear()
        self.stats.clear()
        self.limiter.clear()
        self.faults.clear()


def emulator_state() -> EmulatorState:
    """Return the state of the app that handles the current request."""
    return current_app.extensions["twitch_emulator"]


def shorten(secret: str) -> str:
    """Return the first characters of a code or token, safe to log."""
    return secret[:PREFIX_LENGTH] + "…"


# --- Shared request handling -----------------------------------------------------


def helix_error(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """Build a Helix error response: {"error", "status", "message"}."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:  # a fault may use a status code that has no name
        reason = "Error"
    body = {"error": reason, "status": status, "message": message}
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def oauth_error(status: int, message: str) -> Response:
    """Build an id.twitch.tv error response: {"status", "message"}."""
    response = jsonify({"status": status, "message": message})
    response.status_code = status
    return response


def read_bearer_token(header: str | None) -> str | None:
    """Return the token of an `Authorization: Bearer <token>` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def fault_response(endpoint: str, status: int) -> Response:
    """Build the response of an injected fault in the endpoint's error format."""
    message = f"emulated fault: status {status}"
    if endpoint != PUBSUB:
        return oauth_error(status, message)
    headers: dict[str, str] = {}
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        # The fault leaves the bucket full, so Ratelimit-Reset can be the current time.
        body = request.get_json(silent=True)
        broadcaster_id = body.get("broadcaster_id") if isinstance(body, dict) else None
        if not isinstance(broadcaster_id, str):
            broadcaster_id = None
        headers = emulator_state().limiter.empty_headers(broadcaster_id)
    return helix_error(status, message, headers)


View = Callable[..., Any]


def emulated_endpoint(endpoint: str) -> Callable[[View], View]:
    """Count the view's responses under `endpoint` and apply its queued faults."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            g.stats_endpoint = endpoint
            state = emulator_state()
            delay_ms = state.config.fixed_delay_ms(endpoint)
            fault = state.faults.take(endpoint)
            if fault is not None:
                delay_ms += fault.delay_ms
            if delay_ms:
                time.sleep(delay_ms / 1000)
            if fault is not None and fault.status is not None:
                g.log_detail = "injected fault"
                return fault_response(endpoint, fault.status)
            return view(*args, **kwargs)

        return wrapper

    return decorate


# --- Extension pubsub ------------------------------------------------------------


class PubsubRejection(Exception):
    """Pubsub request that Twitch would reject with `status` and `message`."""

    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        # The log gets the exact cause even where Twitch returns a vague message.
        self.reason = reason or message


def check_client_id(client_id: str | None, expected: str) -> None:
    """Raise a 401 rejection unless the Client-Id header is the extension's ID."""
    if not client_id:
        raise PubsubRejection(401, "missing Client-Id header")
    if not hmac.compare_digest(client_id.encode(), expected.encode()):
        raise PubsubRejection(401, "Client-Id header is not the extension client ID")


def decode_extension_jwt(header: str | None, keys: Sequence[bytes]) -> dict[str, Any]:
    """Verify the bearer JWT with each extension secret and return its claims.

    Only HS256 is accepted and `exp` is required. Every failure is a 401, which is
    Twitch's documented status for an invalid JWT.
    """
    token = read_bearer_token(header)
    if token is None:
        raise PubsubRejection(401, "missing or malformed Authorization: Bearer header")
    # NOTE: developers have reported 403 "JWT could not be verified" from Twitch for
    # a bad signature, so a client should treat 401 and 403 alike.
    for key in keys:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=["HS256"],
                options={"require": ["exp"], "verify_aud": False},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidTokenError as error:
            raise PubsubRejection(401, f"invalid JWT: {error}") from error
    raise PubsubRejection(401, "invalid JWT: signature does not match any secret")


def read_json_body() -> Any:
    """Return the parsed JSON request body or raise a 400 rejection."""
    if not request.is_json:
        raise PubsubRejection(400, "Content-Type must be application/json")
    body = request.get_json(silent=True)
    if body is None:
        raise PubsubRejection(400, "request body is not valid JSON")
    return body


def parse_broadcast_body(body: Any) -> tuple[str, str]:
    """Return the broadcaster ID and message of a channel broadcast or raise a 400."""
    if not isinstance(body, dict):
        raise PubsubRejection(400, "request body must be a JSON object")
    if body.get("is_global_broadcast", False) is not False:
        raise PubsubRejection(400, "the emulator supports only channel broadcasts")
    broadcaster_id = body.get("broadcaster_id")
    if not isinstance(broadcaster_id, str) or not broadcaster_id:
        raise PubsubRejection(400, "broadcaster_id must be a non-empty string")
    if body.get("target") != ["broadcast"]:
        raise PubsubRejection(
            400, 'target must be ["broadcast"], the only target the emulator supports'
        )
    message = body.get("message")
    if not isinstance(message, str):
        raise PubsubRejection(400, "message must be a string")
    return broadcaster_id, message


def check_broadcast_permission(
    claims: Mapping[str, Any], broadcaster_id: str, owner_id: str | None
) -> None:
    """Raise a 403 rejection unless the JWT may broadcast to `broadcaster_id`."""
    # NOTE: Twitch's response to a wrong role or user_id is not documented. The
    # emulator returns the 403 that Twitch returns for other unusable claims.
    if claims.get("role") != "external":
        reason = f"JWT role is {claims.get('role')!r}, expected 'external'"
        raise PubsubRejection(403, JWT_NOT_VERIFIED, reason)
    if owner_id is not None and claims.get("user_id") != owner_id:
        reason = f"JWT user_id {claims.get('user_id')!r} is not the extension owner"
        raise PubsubRejection(403, JWT_NOT_VERIFIED, reason)
    # Missing pubsub_perms or send allow nothing, so they fail the check below.
    permissions = claims.get("pubsub_perms", {})
    send = permissions.get("send", []) if isinstance(permissions, dict) else None
    if not isinstance(send, list):
        # Developers report this 403 from Twitch for pubsub_perms sent as an array.
        reason = "JWT pubsub_perms must be an object whose send entry is a list"
        raise PubsubRejection(403, JWT_NOT_VERIFIED, reason)
    if claims.get("channel_id") != broadcaster_id:
        reason = f"JWT channel_id {claims.get('channel_id')!r} != {broadcaster_id!r}"
        raise PubsubRejection(403, WRONG_CHANNEL, reason)
    if not any(entry in BROADCAST_PERMISSIONS for entry in send):
        reason = f"JWT pubsub_perms.send {send!r} does not allow broadcast"
        raise PubsubRejection(403, WRONG_CHANNEL, reason)


def check_message_size(message: str, max_bytes: int) -> None:
    """Raise a 422 rejection if the UTF-8 message is longer than `max_bytes`."""
    try:
        size = len(message.encode("utf-8"))
    except UnicodeEncodeError as error:
        # JSON allows lone surrogates such as "\ud800", which are not valid UTF-8.
        raise PubsubRejection(400, "message is not valid Unicode text") from error
    if size > max_bytes:
        raise PubsubRejection(
            422, f"message is {size} bytes, more than the limit of {max_bytes}"
        )


def check_pubsub_request(config: EmulatorConfig) -> tuple[str, str]:
    """Validate headers, JWT and body, then return the broadcaster ID and message."""
    check_client_id(request.headers.get("Client-Id"), config.client_id)
    authorization = request.headers.get("Authorization")
    claims = decode_extension_jwt(authorization, config.extension_secrets)
    broadcaster_id, message = parse_broadcast_body(read_json_body())
    check_broadcast_permission(claims, broadcaster_id, config.owner_id)
    check_message_size(message, config.max_message_bytes)
    return broadcaster_id, message


pubsub_bp = Blueprint("pubsub", __name__)


@pubsub_bp.post("/helix/extensions/pubsub")
@emulated_endpoint(PUBSUB)
def send_pubsub_message() -> Response:
    """Accept a channel broadcast like Twitch's Send Extension PubSub Message."""
    state = emulator_state()
    try:
        broadcaster_id, message = check_pubsub_request(state.config)
    except PubsubRejection as rejection:
        g.log_detail = rejection.reason
        return helix_error(rejection.status, rejection.message)

    allowed, headers = state.limiter.consume(broadcaster_id)
    if not allowed:
        g.log_detail = f"rate limited broadcaster_id={broadcaster_id}"
        text = f"rate limit exceeded for broadcaster_id {broadcaster_id}"
        return helix_error(429, text, headers)

    state.ledger.record(broadcaster_id, message)
    size = len(message.encode("utf-8"))
    g.log_detail = f"broadcaster_id={broadcaster_id} bytes={size}"
    return Response(status=204, headers=headers)


@pubsub_bp.post("/helix/extensions/pubsub/")
def send_pubsub_message_trailing_slash() -> Response:
    """Reject the path with a trailing slash, as developers report Twitch does."""
    g.stats_endpoint = PUBSUB
    g.log_detail = "path has a trailing slash"
    return helix_error(403, "Invalid oAuth token")


# --- OAuth and OIDC --------------------------------------------------------------


class OAuthRejection(Exception):
    """OAuth request that Twitch would reject with `status` and `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def authorize_error_page(message: str) -> Response:
    """Build the 400 page that Twitch shows instead of redirecting."""
    text = html.escape(message)
    body = (
        "<!doctype html><title>Bad request</title>"
        f"<h1>Bad request</h1><p>{text}</p>"
    )
    return Response(body, status=400, mimetype="text/html")


def check_redirect_uri(redirect_uri: str | None) -> str:
    """Return the redirect URI if it is an absolute http(s) URL, else raise."""
    if not redirect_uri:
        raise ValueError("missing redirect_uri")
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("redirect_uri must be an absolute http or https URL")
    return redirect_uri


def requested_claim_names(claims: Mapping[str, Any], target: str) -> frozenset[str]:
    """Return the claim names requested for `target` (userinfo or id_token)."""
    names = claims.get(target)
    if names is None:
        return frozenset()
    if not isinstance(names, dict):
        raise ValueError(f"claims.{target} must be a JSON object")
    return frozenset(names)


def parse_requested_claims(text: str | None) -> tuple[frozenset[str], frozenset[str]]:
    """Return the userinfo and id_token claim names requested by `claims`."""
    if not text:
        return frozenset(), frozenset()
    try:
        claims = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError("claims is not valid JSON") from error
    if not isinstance(claims, dict):
        raise ValueError("claims must be a JSON object")
    userinfo = requested_claim_names(claims, "userinfo")
    id_token = requested_claim_names(claims, "id_token")
    return userinfo, id_token


def approving_user(args: Mapping[str, str], default: TwitchUser) -> TwitchUser:
    """Return the default user with any emulator_* query overrides applied."""
    return TwitchUser(
        user_id=args.get("emulator_user_id") or default.user_id,
        username=args.get("emulator_username") or default.username,
        picture=args.get("emulator_picture") or default.picture,
    )


def build_grant(args: Mapping[str, str], config: EmulatorConfig) -> AuthorizationGrant:
    """Validate an authorize request and return what the user approves."""
    if args.get("client_id") != config.client_id:
        raise ValueError("invalid client_id")
    redirect_uri = check_redirect_uri(args.get("redirect_uri"))
    if args.get("response_type") != "code":
        raise ValueError("response_type must be code")
    userinfo_claims, id_token_claims = parse_requested_claims(args.get("claims"))
    return AuthorizationGrant(
        user=approving_user(args, config.user),
        client_id=config.client_id,
        redirect_uri=redirect_uri,
        # Twitch reads scope as space-delimited, and '+' in a query is a space.
        scopes=tuple(args.get("scope", "").split()),
        userinfo_claims=userinfo_claims,
        id_token_claims=id_token_claims,
        nonce=args.get("nonce"),
        created_at=time.time(),
    )


def redirect_with(redirect_uri: str, params: Mapping[str, str | None]) -> Response:
    """Build a 302 to `redirect_uri` with `params` added to its query string."""
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(key, value) for key, value in params.items() if value is not None]
    # urlencode writes spaces as '+', which is how Twitch separates scopes.
    location = urlunsplit(parts._replace(query=urlencode(query)))
    return Response(status=302, headers={"Location": location})


def user_claims(
    grant: AuthorizationGrant, requested: frozenset[str]
) -> dict[str, str]:
    """Return the optional user claims among `requested` that the emulator supports."""
    available = {
        "preferred_username": grant.user.username,
        "picture": grant.user.picture,
    }
    return {name: value for name, value in available.items() if name in requested}


def build_id_token(access: AccessGrant, key: bytes) -> str:
    """Sign an OIDC id_token with a private random key."""
    grant = access.grant
    claims: dict[str, Any] = {
        "aud": grant.client_id,
        "azp": grant.client_id,
        "exp": access.expires_at,
        "iat": access.issued_at,
        "iss": ISSUER,
        "sub": grant.user.user_id,
    }
    if grant.nonce:
        claims["nonce"] = grant.nonce
    claims.update(user_claims(grant, grant.id_token_claims))
    return jwt.encode(claims, key, algorithm="HS256")


def exchange_code(form: Mapping[str, str], state: EmulatorState) -> dict[str, Any]:
    """Exchange an authorization code for tokens or raise OAuthRejection."""
    config = state.config
    if form.get("client_id") != config.client_id:
        raise OAuthRejection(400, "invalid client")
    secret = form.get("client_secret", "").encode()
    if not hmac.compare_digest(secret, config.client_secret.encode()):
        raise OAuthRejection(403, "invalid client secret")
    # NOTE: Twitch's message for a wrong grant_type is a guess.
    if form.get("grant_type") != "authorization_code":
        raise OAuthRejection(400, "invalid grant type")
    grant = state.oauth.redeem_code(form.get("code", ""))
    if grant is None:
        raise OAuthRejection(400, "Invalid authorization code")
    if form.get("redirect_uri") != grant.redirect_uri:
        # Spelled as in responses that developers have recorded from Twitch.
        text = "Parameter redirect_uri does not match registeredURI"
        raise OAuthRejection(400, text)

    access = state.oauth.issue_tokens(grant)
    body: dict[str, Any] = {
        "access_token": access.access_token,
        "expires_in": access.expires_at - access.issued_at,
        "refresh_token": access.refresh_token,
        "scope": list(grant.scopes),
        "token_type": "bearer",
    }
    if "openid" in grant.scopes:
        body["id_token"] = build_id_token(access, state.id_token_key)
    return body


oauth_bp = Blueprint("oauth", __name__)


@oauth_bp.get("/oauth2/authorize")
@emulated_endpoint(OAUTH_AUTHORIZE)
def authorize() -> Response:
    """Approve or deny at once and redirect to the client's redirect_uri."""
    state = emulator_state()
    args = request.args
    try:
        grant = build_grant(args, state.config)
    except ValueError as error:
        g.log_detail = str(error)
        return authorize_error_page(str(error))

    if args.get("emulator_deny") == "1":
        g.log_detail = "denied"
        denial = {
            "error": "access_denied",
            "error_description": "The user denied you access",
            "state": args.get("state"),
        }
        return redirect_with(grant.redirect_uri, denial)

    code = state.oauth.issue_code(grant)
    g.log_detail = f"user_id={grant.user.user_id} code={shorten(code)}"
    approval = {
        "code": code,
        "scope": " ".join(grant.scopes),
        "state": args.get("state"),
    }
    return redirect_with(grant.redirect_uri, approval)


@oauth_bp.post("/oauth2/token")
@emulated_endpoint(OAUTH_TOKEN)
def token() -> Response:
    """Exchange an authorization code (grant_type=authorization_code) for tokens."""
    state = emulator_state()
    try:
        body = exchange_code(request.form, state)
    except OAuthRejection as rejection:
        code = shorten(request.form.get("code", ""))
        g.log_detail = f"{rejection.message}, code={code}"
        return oauth_error(rejection.status, rejection.message)
    g.log_detail = f"access_token={shorten(body['access_token'])}"
    return jsonify(body)


@oauth_bp.get("/oauth2/token")
def token_with_get() -> Response:
    """Reject GET with 404, as developers report Twitch does."""
    g.stats_endpoint = OAUTH_TOKEN
    return oauth_error(404, "Not Found")


@oauth_bp.get("/oauth2/userinfo")
@emulated_endpoint(USERINFO)
def userinfo() -> Response:
    """Return the OIDC claims of the user behind a bearer access token."""
    state = emulator_state()
    access_token = read_bearer_token(request.headers.get("Authorization"))
    access = state.oauth.find_token(access_token) if access_token else None
    if access is None:
        g.log_detail = "unknown, expired or missing access token"
        return oauth_error(401, "invalid access token")

    grant = access.grant
    claims: dict[str, Any] = {
        "aud": grant.client_id,
        "exp": access.expires_at,
        "iat": access.issued_at,
        "iss": ISSUER,
        "sub": grant.user.user_id,
    }
    claims.update(user_claims(grant, grant.userinfo_claims))
    g.log_detail = f"user_id={grant.user.user_id}"
    return jsonify(claims)


# --- Emulator control ------------------------------------------------------------

control_bp = Blueprint("control", __name__, url_prefix="/emulator")


@control_bp.get("/health")
def health() -> Response:
    """Report that the server accepts requests."""
    return Response("ok", mimetype="text/plain")


@control_bp.get("/pubsub")
def list_pubsub_messages() -> Response:
    """Return the accepted pubsub messages, optionally of one broadcaster_id."""
    broadcaster_id = request.args.get("broadcaster_id")
    return jsonify(emulator_state().ledger.to_json(broadcaster_id))


@control_bp.get("/stats")
def show_stats() -> Response:
    """Return the number of responses per endpoint and status."""
    return jsonify(emulator_state().stats.to_json())


@control_bp.post("/reset")
def reset() -> Response:
    """Clear records, stats, rate-limit buckets and faults."""
    emulator_state().reset()
    return Response(status=204)


@control_bp.get("/faults")
def list_faults() -> Response:
    """Return the queued faults."""
    return jsonify(emulator_state().faults.pending())


@control_bp.post("/faults")
def add_fault() -> Response:
    """Queue a fault for the next calls of one endpoint and return the queue."""
    try:
        fault = parse_fault(request.get_json(silent=True))
    except ValueError as error:
        g.log_detail = str(error)
        response = jsonify({"status": 400, "message": str(error)})
        response.status_code = 400
        return response
    g.log_detail = f"queued {fault.to_json()}"
    return jsonify(emulator_state().faults.add(fault))


# --- Application and command line ------------------------------------------------


def start_timer() -> None:
    """Note when the request started, for the log line."""
    g.started_at = time.monotonic()


def log_and_count(response: Response) -> Response:
    """Count the response in the stats and log one line for the request."""
    endpoint = g.get("stats_endpoint")
    if endpoint is not None:
        emulator_state().stats.count(endpoint, response.status_code)
    elapsed_ms = (time.monotonic() - g.get("started_at", time.monotonic())) * 1000
    detail = g.get("log_detail")
    # The path only: query strings can contain codes and state values.
    logger.info(
        "%s %s %d %.0f ms%s",
        request.method,
        request.path,
        response.status_code,
        elapsed_ms,
        f" ({detail})" if detail else "",
    )
    return response


def create_app(config: EmulatorConfig) -> Flask:
    """Create the emulator's Flask app with fresh in-memory state."""
    app = Flask(__name__)
    app.extensions["twitch_emulator"] = EmulatorState(config)
    app.before_request(start_timer)
    app.after_request(log_and_count)
    app.register_blueprint(pubsub_bp)
    app.register_blueprint(oauth_bp)
    app.register_blueprint(control_bp)
    return app


def positive_int(text: str) -> int:
    """Parse a command-line integer that must be at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """Parse a command-line integer that must be at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """Parse a command-line number that must be greater than 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def add_identity_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options that set the address and the approving user."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port",
        type=non_negative_int,
        required=True,
        help="TCP port to listen on (0 picks a free port and logs it)",
    )
    parser.add_argument(
        "--user-id",
        default=DEFAULT_USER_ID,
        help="Twitch user ID of the user who approves authorization requests",
    )
    parser.add_argument(
        "--username",
        default=DEFAULT_USERNAME,
        help="display name returned as the preferred_username claim",
    )
    parser.add_argument(
        "--picture",
        default=DEFAULT_PICTURE,
        help="profile picture URL returned as the picture claim (never fetched)",
    )


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options that set sizes, rates, delays and lifetimes."""
    parser.add_argument(
        "--max-message-bytes",
        type=positive_int,
        default=5120,
        help="maximum pubsub message size in UTF-8 bytes (larger messages get 422)",
    )
    parser.add_argument(
        "--rate-capacity",
        type=positive_int,
        default=100,
        help="points in each channel's pubsub rate-limit bucket",
    )
    parser.add_argument(
        "--rate-refill-per-second",
        type=positive_float,
        default=1.0,
        help="points added to each channel's bucket per second",
    )
    parser.add_argument(
        "--token-delay-ms",
        type=non_negative_int,
        default=0,
        help="delay before every /oauth2/token response, in milliseconds",
    )
    parser.add_argument(
        "--code-lifetime-seconds",
        type=positive_float,
        default=600.0,
        help="time in seconds during which an authorization code can be exchanged",
    )
    parser.add_argument(
        "--access-token-lifetime-seconds",
        type=positive_int,
        default=14_400,
        help="lifetime of issued access tokens (expires_in), in seconds",
    )


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Serve emulated Twitch pubsub, OAuth and userinfo endpoints."
    )
    add_identity_arguments(parser)
    add_limit_arguments(parser)
    return parser.parse_args(argv)


def stop_on_sigterm(signum: int, frame: object) -> NoReturn:
    """Raise SystemExit so that main() leaves serve_forever() and logs the stop."""
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the emulator until SIGTERM or Ctrl-C."""
    args = parse_arguments(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Werkzeug would log each request a second time, with its query string.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        config = build_config(args, os.environ)
    except ConfigError as error:
        sys.exit(f"twitch_emulator: {error}")

    server = make_server(args.host, args.port, create_app(config), threaded=True)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    logger.info("listening on http://%s:%d", args.host, server.server_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        logger.info("stopped")


if __name__ == "__main__":
    main()
