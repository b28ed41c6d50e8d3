"""Service settings, read once from the environment.

Every variable the service reads is declared here with its default and meaning;
the README's configuration table lists the same variables.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


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


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {text!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be greater than 0, got {text!r}")
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
    if value.startswith("s3://") and len(value) > len("s3://"):
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
    value = int(_number(environ, "ARGUS_PART_MAX_BYTES", 4096))
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
        owner_id=_required(environ, "ARGUS_OWNER_ID"),
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
    )
