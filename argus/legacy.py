"""Import of the original service's whole-map objects into the per-key layout.

The original service kept ``twitchIdByArgusToken`` (``{token: twitchId}``) and
``pendingTwitchLogins`` (``{state: {twitchId, argusToken}}``) as two JSON
objects in the same bucket.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from dataclasses import field

from argus.links import CHANNEL_PREFIX
from argus.logins import is_valid_state
from argus.logins import seal_token
from argus.services import Services
from argus.store import ObjectStore
from argus.twitch.oauth import TwitchUser

log = logging.getLogger(__name__)

LEGACY_TOKENS_KEY = "twitchIdByArgusToken"
LEGACY_PENDING_KEY = "pendingTwitchLogins"
MAX_LEGACY_TOKEN_LENGTH = 256
# One marker per imported pending login, keyed by the SHA-256 of its state, so
# that a second run cannot bring back a login that was claimed since.
IMPORTED_PENDING_PREFIX = "legacy/imported-pending/"


class LegacyFormatError(ValueError):
    """A legacy object is not the JSON map the original service wrote."""


@dataclass
class MigrationReport:
    """Counts of what an import moved and skipped, for the operator."""

    links: int = 0
    pending: int = 0
    skipped_existing: list[str] = field(default_factory=list)
    invalid: int = 0
    superseded: int = 0
    pending_imported_before: int = 0

    def summary(self) -> str:
        lines = [
            f"imported {self.links} links and {self.pending} pending logins",
            f"skipped {len(self.skipped_existing)} channels already linked",
            f"skipped {self.invalid} malformed entries",
            f"skipped {self.superseded} older tokens of channels listed twice",
            f"skipped {self.pending_imported_before} pending logins imported "
            "by an earlier run",
        ]
        return "\n".join(lines)


def _load_map(services: Services, key: str) -> dict:
    stored = services.store.get(key)
    if stored is None or not stored.body.strip():
        return {}
    try:
        value = json.loads(stored.body)
    except ValueError as error:
        raise LegacyFormatError(f"{key} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise LegacyFormatError(
            f"{key} must be a JSON object, not {type(value).__name__}"
        )
    return value


def _valid_pair(token: object, channel_id: object) -> bool:
    return (
        isinstance(token, str)
        and 0 < len(token) <= MAX_LEGACY_TOKEN_LENGTH
        and token.isprintable()
        and isinstance(channel_id, (str, int))
        and str(channel_id).isascii()
        and str(channel_id).isdigit()
    )


def import_legacy_objects(
    services: Services, replace_existing: bool = False
) -> MigrationReport:
    """Link every legacy token to its channel and re-record pending logins."""
    report = MigrationReport()
    tokens = _load_map(services, LEGACY_TOKENS_KEY)
    pending = _load_map(services, LEGACY_PENDING_KEY)
    existing = {
        key.removeprefix(CHANNEL_PREFIX)
        for key in services.store.list_keys(CHANNEL_PREFIX)
    }

    # A channel can have one valid token; when the map lists several, the
    # original service had replaced all but the last one written.
    token_by_channel: dict[str, str] = {}
    for token, channel_id in tokens.items():
        if not _valid_pair(token, channel_id):
            report.invalid += 1
            continue
        if str(channel_id) in token_by_channel:
            report.superseded += 1
        token_by_channel[str(channel_id)] = token

    for channel_id, token in token_by_channel.items():
        if channel_id in existing and not replace_existing:
            report.skipped_existing.append(channel_id)
            continue
        services.links.link(channel_id, token=token)
        report.links += 1

    for state, login in pending.items():
        if not isinstance(login, dict) or not is_valid_state(state):
            report.invalid += 1
            continue
        token, channel_id = login.get("argusToken"), login.get("twitchId")
        if not _valid_pair(token, channel_id):
            report.invalid += 1
            continue
        marker = (
            IMPORTED_PENDING_PREFIX + hashlib.sha256(state.lower().encode()).hexdigest()
        )
        if services.store.get(marker) is not None:
            report.pending_imported_before += 1
            continue
        user = TwitchUser(str(channel_id), None, None)
        services.logins.record(state, user, sealed_token=seal_token(token, state))
        services.store.put(marker, b"{}")
        report.pending += 1

    log.info("legacy import: %s", report.summary().replace("\n", "; "))
    return report


def erase_legacy_objects(store: ObjectStore) -> int:
    """Delete the original service's token objects; return how many existed."""
    erased = 0
    for key in (LEGACY_TOKENS_KEY, LEGACY_PENDING_KEY):
        if store.get(key) is not None:
            store.delete(key)
            erased += 1
    return erased
