"""The long-lived objects of one service process, built from the settings."""

from __future__ import annotations

import logging
import threading

from argus.broadcast.buffer import OutboxBuffer
from argus.broadcast.delivery import DeliveryService
from argus.broadcast.outbox import Outbox
from argus.config import Settings
from argus.links import LinkRegistry
from argus.logins import PendingLogins
from argus.logs import RepeatLimiter
from argus.mapping_cache import MappingCache
from argus.runs import RunArchive
from argus.store import ObjectStore
from argus.store import open_store
from argus.transform.serialized import RunSerializer
from argus.twitch.oauth import OAuthClient
from argus.twitch.pubsub import PubsubClient

log = logging.getLogger(__name__)


class Services:
    """Store, links, mappings and delivery, shared by the request handlers.

    Building it does no network I/O; the background threads start on
    ``start_background()``, which the first request or the server hook calls.
    """

    def __init__(self, settings: Settings, store: ObjectStore | None = None) -> None:
        self.settings = settings
        self.store = store or open_store(
            settings.store_url, settings.http_timeout_seconds
        )
        self.links = LinkRegistry(self.store)
        self.logins = PendingLogins(self.store, self.links)
        self.oauth = OAuthClient(
            settings.twitch_auth_url,
            settings.twitch_id,
            settings.client_secret,
            redirect_uri=settings.public_url + "/oauth_token",
            timeout_seconds=settings.http_timeout_seconds,
        )
        self.mappings = MappingCache(self.store, settings.mappings_refresh_seconds)
        self.archive = RunArchive(self.store)
        self.outbox = Outbox(settings.state_dir / "outbox.sqlite3")
        self.pubsub = PubsubClient(
            settings.twitch_api_url,
            settings.twitch_id,
            settings.signing_secret,
            settings.owner_id,
            settings.http_timeout_seconds,
        )
        self.delivery = DeliveryService(
            self.outbox,
            self.pubsub,
            self.archive,
            lock_path=settings.state_dir / "delivery.lock",
            part_max_bytes=settings.part_max_bytes,
            dashboard_keep_seconds=settings.dashboard_recent_seconds,
        )
        self.outbox_buffer = OutboxBuffer(self.outbox, on_flush=self.delivery.notify)
        self.run_serializer = RunSerializer()
        self.problem_log = RepeatLimiter(interval=60.0)
        self._started = False
        self._start_lock = threading.Lock()

    def start_background(self) -> None:
        """Start mapping refresh and delivery once per process."""
        # Every request calls this; once started, it returns without the lock.
        if self._started:
            return
        with self._start_lock:
            if self._started:
                return
            self._started = True
        self.mappings.start()
        self.delivery.start()

    def shutdown(self, timeout: float = 20.0) -> None:
        """Finish pending broadcasts (in the delivering process) and stop."""
        self.mappings.stop()
        self.outbox_buffer.close()
        if self._started:
            self.delivery.shutdown(timeout)
