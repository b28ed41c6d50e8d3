"""Prometheus metrics of the service.

Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` is set before the workers start, so
prometheus_client keeps the values in files there and ``/metrics`` adds them
up across worker processes.
"""

from __future__ import annotations

from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram

REQUESTS = Counter(
    "argus_http_requests_total", "HTTP requests answered.", ["endpoint", "status"]
)
REQUEST_SECONDS = Histogram(
    "argus_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RUN_UPDATES = Counter(
    "argus_run_updates_total", "Run updates accepted from clients by /run_info."
)
BROADCASTS = Counter(
    "argus_broadcasts_total",
    "Broadcasts finished, by result (delivered, rejected, dropped).",
    ["result"],
)
PARTS = Counter("argus_broadcast_parts_total", "Pubsub parts accepted by Twitch.")
RETRIES = Counter(
    "argus_broadcast_retries_total", "Broadcasts scheduled again after a failure."
)
TWITCH_ANSWERS = Counter(
    "argus_twitch_answers_total",
    "Answers from Twitch by endpoint and HTTP status (error for no answer).",
    ["endpoint", "status"],
)
COALESCED = Counter(
    "argus_states_coalesced_total",
    "Run states replaced by a newer one before their broadcast finished.",
)
SKIPPED = Counter(
    "argus_states_skipped_total",
    "Run states not broadcast because they equal the last one delivered.",
)
BROADCAST_DELAY_SECONDS = Histogram(
    "argus_broadcast_delay_seconds",
    "Time from a run update's arrival to the last part accepted by Twitch.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
MAPPING_REFRESHES = Counter(
    "argus_mapping_refreshes_total",
    "Mapping reloads from the store by result "
    "(loaded, unchanged, invalid, missing, error).",
    ["result"],
)
STORE_ERRORS = Counter(
    "argus_store_errors_total",
    "Store operations that failed, by operation "
    "(request, check, load_mappings, save_run, save_dashboard).",
    ["operation"],
)
PENDING_STATES = Gauge(
    "argus_pending_states",
    "Channels with a run state waiting for delivery.",
    # Only the delivering process sets it. "livemax" drops the value of a
    # process that exited, so a new sender's value is not hidden by a stale one.
    multiprocess_mode="livemax",
)
RATE_LIMITED = Counter(
    "argus_rate_limited_total",
    "Requests refused by a rate limit, by rule (such as run_info.token).",
    ["rule"],
)
