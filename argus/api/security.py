"""Hardening shared by the endpoints: response headers, rate limits, input shapes."""

from __future__ import annotations

import ipaddress
import logging
import re

from flask import Flask
from flask import Response
from flask import current_app
from flask import request

from argus import metrics
from argus.api.errors import RateLimited
from argus.ratelimit import RateDecision
from argus.ratelimit import RateLimiter
from argus.ratelimit import address_key
from argus.ratelimit import hash_key

log = logging.getLogger(__name__)

RATE_LIMITER_EXTENSION = "argus.ratelimit"

# Issued tokens are 43 URL-safe characters. Tokens imported from the original
# service have an unknown shape, so lookups accept any printable ASCII text
# (space included) up to this length.
MAX_TOKEN_LENGTH = 256
_TOKEN_PATTERN = re.compile(rf"[\x20-\x7e]{{1,{MAX_TOKEN_LENGTH}}}")
# argusProtocolVersion is "1" or "2" today, sent as a string or a number.
_PROTOCOL_VERSION_PATTERN = re.compile(r"[0-9]{1,3}")

# Responses are text or JSON read by scripts, and none needs to load anything
# or be framed. The HTML pages set their own, wider policy.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
HSTS_MAX_AGE_SECONDS = 365 * 24 * 3600


def init_app(app: Flask) -> None:
    """Create the shared rate limiter and add security headers to every response."""
    settings = app.extensions["argus"].settings
    app.extensions[RATE_LIMITER_EXTENSION] = RateLimiter(
        settings.state_dir / "ratelimit.sqlite3", settings.rate_limits
    )
    # Browsers ignore HSTS on plain-HTTP responses, so the header is only sent
    # when the public URL is HTTPS. Subdomains are not included, because the
    # service may run on a shared domain such as fly.dev.
    hsts = None
    if settings.public_url.startswith("https://"):
        hsts = f"max-age={HSTS_MAX_AGE_SECONDS}"

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault(
            "Content-Security-Policy", API_CONTENT_SECURITY_POLICY
        )
        if hsts is not None:
            response.headers.setdefault("Strict-Transport-Security", hsts)
        return response


def client_address() -> str:
    """Return the client's IP address as the service is configured to see it.

    Behind fly.io's proxy every request comes from the proxy, which puts the
    client's address in ``Fly-Client-IP``
    (https://fly.io/docs/networking/request-headers/). A missing or malformed
    header, as on the platform's own health checks, falls back to the TCP peer.
    """
    if current_app.extensions["argus"].settings.trust_proxy == "fly":
        forwarded = request.headers.get("Fly-Client-IP", "").strip()
        try:
            return str(ipaddress.ip_address(forwarded))
        except ValueError:
            pass
    return request.remote_addr or ""


def check_rate_limit(rule_name: str, key: str, log_id: str) -> RateDecision:
    """Count the request against a rule and log when its bucket is empty.

    ``log_id`` names the client in the log line, once a minute per bucket.
    """
    limiter: RateLimiter = current_app.extensions[RATE_LIMITER_EXTENSION]
    decision = limiter.hit(rule_name, key)
    if decision.allowed:
        return decision
    metrics.RATE_LIMITED.labels(rule_name).inc()
    suppressed = limiter.denial_log.allow(f"{rule_name}:{key}")
    if suppressed is not None:
        log.warning(
            "rate limit %s reached by %s, retry in %d s%s",
            rule_name,
            log_id,
            decision.retry_after,
            f" ({suppressed} repeats not logged)" if suppressed else "",
        )
    return decision


def enforce_rate_limit(rule_name: str, key: str, log_id: str) -> None:
    """Count the request against a rule and raise RateLimited if its bucket is empty."""
    decision = check_rate_limit(rule_name, key, log_id)
    if not decision.allowed:
        raise RateLimited(decision.retry_after)


def limit_by_address(endpoint: str) -> None:
    """Apply the ``<endpoint>.address`` rule to the client address."""
    rule_name = f"{endpoint}.address"
    if not _has_rule(rule_name):
        return
    key = address_key(client_address())
    enforce_rate_limit(rule_name, key, log_id=key)


def is_address_over_limit(endpoint: str) -> bool:
    """Apply the ``<endpoint>.address`` rule, for endpoints that cannot send 429."""
    key = address_key(client_address())
    return not check_rate_limit(f"{endpoint}.address", key, log_id=key).allowed


def limit_by_secret(rule_name: str, secret: str) -> None:
    """Apply a rule to a token or state, keyed by its hash.

    The log names the secret by the first 8 hex digits of its SHA-256, as the
    token logs of ``argus.links`` do.
    """
    if not _has_rule(rule_name):
        return
    key = hash_key(secret)
    enforce_rate_limit(rule_name, key, log_id=key[:8])


def _has_rule(rule_name: str) -> bool:
    limiter: RateLimiter = current_app.extensions[RATE_LIMITER_EXTENSION]
    return rule_name in limiter.rules


def is_token_shaped(value: object) -> bool:
    """Tell whether a value can be an Argus token: 1-256 printable ASCII characters."""
    return isinstance(value, str) and _TOKEN_PATTERN.fullmatch(value) is not None


def is_protocol_version(value: object) -> bool:
    """Tell whether a value is a protocol version: absent, or up to three digits."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value <= 999
    return isinstance(value, str) and (
        _PROTOCOL_VERSION_PATTERN.fullmatch(value) is not None
    )
