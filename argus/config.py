"""Service settings, read once from the environment.

Every variable the service reads is declared here with its default and meaning;
the README's configuration table lists the same variables.

ARGUS_RATE_LIMITS sets the request rate limits of /run_info, /get_argus_token,
/check_argus_token and /oauth_token. Each rule is a token bucket named
ENDPOINT.KEY, where KEY is ``address`` (the client address) or ``token`` (the
SHA-256 of the Argus token, or of the ``state`` for /get_argus_token, which is
named ``get_argus_token.state``). /oauth_token has only an address rule, and
over its limit it redirects to the failure page instead of returning 429.
A bucket contains up to COUNT requests and refills completely in SECONDS, so
COUNT is the largest burst and COUNT/SECONDS the sustained rate. The value is
one of:

- empty: the defaults in DEFAULT_RATE_LIMITS;
- ``off``: no limits at all (benchmarks use this);
- comma-separated ``RULE=COUNT/SECONDS`` or ``RULE=off`` entries, which replace
  the defaults of the rules they name, e.g.
  ``run_info.token=240/60,check_argus_token.address=off``.

ARGUS_TRUST_PROXY is ``none`` (the client address is the TCP peer) or ``fly``
(the address in the ``Fly-Client-IP`` header that fly.io's proxy sets). Set
``fly`` only behind that proxy, because any client can send the header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class RateLimitRule:
    """Token bucket of ``count`` requests that refills completely in ``seconds``."""

    name: str
    count: int
    seconds: float


# The mod sends one update per room, and the app sends one every 5 s at most
# (12 a minute). A linking client polls /get_argus_token once a second for
# 60 s. Address rules allow several clients behind one NAT address.
DEFAULT_RATE_LIMITS = (
    RateLimitRule("run_info.token", 120, 60),
    RateLimitRule("run_info.address", 600, 60),
    RateLimitRule("get_argus_token.state", 120, 60),
    RateLimitRule("get_argus_token.address", 300, 60),
    RateLimitRule("check_argus_token.token", 60, 60),
    RateLimitRule("check_argus_token.address", 300, 60),
    # Each accepted redirect costs two calls to Twitch, made with the service's
    # client id. A streamer links once and may retry a few times, and several
    # streamers may link from one address at an event.
    RateLimitRule("oauth_token.address", 100, 600),
)
MAX_RATE_LIMIT_COUNT = 1_000_000
TRUST_PROXY_CHOICES = {"none", "fly"}


@dataclass(frozen=True)
class Settings:
    """Validated service settings."""

    twitch_id: str
    client_secret: str = field(repr=False)
    # Decoded extension secrets: the first signs, any of them verifies.
    extension_secrets: tuple[bytes, ...] = field(repr=False)
    owner_id: str
    store_url: str
    twitch_api_url: str = "https://api.twitch.tv"
    twitch_auth_url: str = "https://id.twitch.tv"
    public_url: str = "https://argus-h2-backend.fly.dev"
    state_dir: Path = Path(tempfile.gettempdir()) / "argus"
    part_max_bytes: int = 4096
    mappings_refresh_seconds: float = 60.0
    http_timeout_seconds: float = 5.0
    dashboard_recent_seconds: float = 30 * 60
    log_level: str = "INFO"
    log_format: str = "text"
    cors_origins: tuple[str, ...] = ()
    rate_limits: tuple[RateLimitRule, ...] = ()
    trust_proxy: str = "none"

    @property
    def signing_secret(self) -> bytes:
        return self.extension_secrets[0]


# Twitch refuses pubsub messages over 5 KB; the reference service's parts of
# about 4,100 bytes are the largest size known to work in production.
PART_MAX_BYTES_LIMIT = 5120
PART_MAX_BYTES_MINIMUM = 256


def decode_extension_secrets(value: str, name: str) -> tuple[bytes, ...]:
    """Decode a comma-separated list of base64 extension secrets."""
    secrets: list[bytes] = []
    for text in value.split(","):
        text = text.strip()
        if not text:
            continue
        try:
            secrets.append(base64.b64decode(text, validate=True))
        except binascii.Error as error:
            raise ConfigError(
                f"{name} must be the base64 secret shown in the Twitch "
                f"developer console (comma-separated during a rotation): {error}"
            ) from None
    if not secrets:
        raise ConfigError(f"{name} is empty")
    return tuple(secrets)


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"missing required setting {name}")
    return value


def _user_id(environ: Mapping[str, str], name: str) -> str:
    value = _required(environ, name)
    if not (value.isascii() and value.isdigit()):
        raise ConfigError(f"{name} must be a numeric Twitch user id, got {value!r}")
    return value


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number above 0, got {text!r}")
    return value


def _url(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name, "").strip() or default
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must start with http:// or https://, got {value!r}")
    return value.rstrip("/")


def _store_url(environ: Mapping[str, str]) -> str:
    value = _required(environ, "ARGUS_STORE")
    if value.startswith("sqlite:///") and len(value) > len("sqlite:///"):
        return value
    # open_store() strips slashes around the bucket, but a key prefix after
    # it would end up in the bucket name.
    bucket = value.removeprefix("s3://").strip("/")
    if value.startswith("s3://") and bucket and "/" not in bucket:
        return value
    raise ConfigError(
        f"ARGUS_STORE must be sqlite:///ABSOLUTE/PATH or s3://BUCKET, got {value!r}"
    )


def _default_state_dir(store_url: str) -> Path:
    # Worker processes of one service share local state (the delivery outbox,
    # rate-limit counters), so the default is derived from the store they share.
    digest = hashlib.sha256(store_url.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"argus-{digest}"


def _part_max_bytes(environ: Mapping[str, str]) -> int:
    number = _number(environ, "ARGUS_PART_MAX_BYTES", 4096)
    if number != int(number):
        raise ConfigError(f"ARGUS_PART_MAX_BYTES must be a whole number, got {number}")
    value = int(number)
    if not PART_MAX_BYTES_MINIMUM <= value <= PART_MAX_BYTES_LIMIT:
        raise ConfigError(
            f"ARGUS_PART_MAX_BYTES must be between {PART_MAX_BYTES_MINIMUM} and "
            f"{PART_MAX_BYTES_LIMIT}, got {value}"
        )
    return value


def _choice(environ: Mapping[str, str], name: str, default: str, choices: set[str]):
    value = environ.get(name, "").strip() or default
    if value.lower() not in choices:
        raise ConfigError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value.lower()


def _origins(environ: Mapping[str, str], twitch_id: str, public_url: str):
    explicit = environ.get("ARGUS_CORS_ORIGINS", "").strip()
    if explicit:
        origins = [origin.strip().rstrip("/") for origin in explicit.split(",")]
    else:
        # Released and Hosted Test extensions are served from this origin.
        origins = [f"https://{twitch_id}.ext-twitch.tv"]
        dashboard = environ.get("ARGUS_DASHBOARD_ORIGIN", "").strip() or public_url
        origins.append(dashboard.rstrip("/"))
    for origin in origins:
        if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
            raise ConfigError(
                f"ARGUS_CORS_ORIGINS entries must be origins such as "
                f"https://example.com, got {origin!r}"
            )
    return tuple(dict.fromkeys(origins))


def _rate_limit_rule(name: str, entry: str) -> RateLimitRule | None:
    value = entry.partition("=")[2].strip()
    if value.lower() == "off":
        return None
    count_text, slash, seconds_text = value.partition("/")
    try:
        count = int(count_text)
        seconds = float(seconds_text)
    except ValueError:
        count, seconds = 0, 0.0
    if (
        not slash
        or not 0 < count <= MAX_RATE_LIMIT_COUNT
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise ConfigError(
            f"ARGUS_RATE_LIMITS entry {entry!r} must be RULE=COUNT/SECONDS with a "
            f"whole COUNT from 1 to {MAX_RATE_LIMIT_COUNT} and SECONDS above 0, "
            "or RULE=off"
        )
    return RateLimitRule(name, count, seconds)


def _rate_limits(environ: Mapping[str, str]) -> tuple[RateLimitRule, ...]:
    text = environ.get("ARGUS_RATE_LIMITS", "").strip()
    if text.lower() == "off":
        return ()
    rules: dict[str, RateLimitRule | None] = {
        rule.name: rule for rule in DEFAULT_RATE_LIMITS
    }
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name = entry.partition("=")[0].strip()
        if name not in rules or "=" not in entry:
            raise ConfigError(
                f"ARGUS_RATE_LIMITS entry {entry!r} must name one of "
                f"{', '.join(rules)} as RULE=COUNT/SECONDS or RULE=off"
            )
        rules[name] = _rate_limit_rule(name, entry)
    return tuple(rule for rule in rules.values() if rule is not None)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise ConfigError naming a bad variable."""
    environ = os.environ if environ is None else environ
    store_url = _store_url(environ)
    state_dir = environ.get("ARGUS_STATE_DIR", "").strip()
    log_levels = {"debug", "info", "warning", "error"}
    twitch_id = _required(environ, "ARGUS_TWITCH_ID")
    public_url = _url(environ, "ARGUS_PUBLIC_URL", "https://argus-h2-backend.fly.dev")

    return Settings(
        twitch_id=twitch_id,
        client_secret=_required(environ, "ARGUS_CLIENT_SECRET"),
        extension_secrets=decode_extension_secrets(
            _required(environ, "ARGUS_EXTENSION_SECRET"), "ARGUS_EXTENSION_SECRET"
        ),
        owner_id=_user_id(environ, "ARGUS_OWNER_ID"),
        store_url=store_url,
        twitch_api_url=_url(environ, "ARGUS_TWITCH_API_URL", "https://api.twitch.tv"),
        twitch_auth_url=_url(environ, "ARGUS_TWITCH_AUTH_URL", "https://id.twitch.tv"),
        public_url=public_url,
        state_dir=Path(state_dir) if state_dir else _default_state_dir(store_url),
        part_max_bytes=_part_max_bytes(environ),
        mappings_refresh_seconds=_number(environ, "ARGUS_MAPPINGS_REFRESH_SECONDS", 60),
        http_timeout_seconds=_number(environ, "ARGUS_HTTP_TIMEOUT_SECONDS", 5),
        dashboard_recent_seconds=_number(
            environ, "ARGUS_DASHBOARD_RECENT_SECONDS", 30 * 60
        ),
        log_level=_choice(environ, "ARGUS_LOG_LEVEL", "info", log_levels).upper(),
        log_format=_choice(environ, "ARGUS_LOG_FORMAT", "text", {"text", "json"}),
        cors_origins=_origins(environ, twitch_id, public_url),
        rate_limits=_rate_limits(environ),
        trust_proxy=_choice(environ, "ARGUS_TRUST_PROXY", "none", TRUST_PROXY_CHOICES),
    )
