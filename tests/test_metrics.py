"""GET /metrics in one process and added up across gunicorn workers."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from argus.links import LinkRegistry
from argus.store import open_store
from tests import support
from tests.conftest import publish_sample_mappings

MAPPINGS_FILE = support.REPO_ROOT / "ui_mappings.json"
SAMPLE_RUN = json.loads((support.REPO_ROOT / "docs" / "sample_run.json").read_text())

# The questions an operator asks of the service, one metric family each.
EXPECTED_FAMILIES = {
    "argus_http_requests",
    "argus_http_request_duration_seconds",
    "argus_run_updates",
    "argus_broadcasts",
    "argus_broadcast_parts",
    "argus_broadcast_retries",
    "argus_broadcast_delay_seconds",
    "argus_twitch_answers",
    "argus_states_coalesced",
    "argus_states_skipped",
    "argus_mapping_refreshes",
    "argus_store_errors",
    "argus_pending_states",
}


def sample_value(text: str, name: str, **labels: str) -> float:
    """Return the sum of the samples called ``name`` that have ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != name:
                continue
            if all(sample.labels.get(key) == value for key, value in labels.items()):
                total += sample.value
    return total


def test_metrics_text_format(client, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    before = client.get("/metrics").text
    client.get("/healthz")
    answer = client.get("/metrics")

    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain")
    families = {family.name for family in text_string_to_metric_families(answer.text)}
    assert EXPECTED_FAMILIES <= families
    name = "argus_http_requests_total"
    labels = {"endpoint": "/healthz", "status": "200"}
    increase = sample_value(answer.text, name, **labels) - sample_value(
        before, name, **labels
    )
    assert increase == 1


def test_metrics_openmetrics(client, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    answer = client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert answer.status_code == 200
    assert answer.content_type.startswith("application/openmetrics-text")
    assert answer.text.endswith("# EOF\n")


def per_worker_healthz(metrics_dir, tmp_path) -> dict[str, float]:
    """Return the /healthz count of each worker's counter file."""
    counts = {}
    for path in sorted(metrics_dir.glob("counter_*.db")):
        # MultiProcessCollector reads a whole folder, so each file gets its own.
        folder = tmp_path / "per-worker" / path.stem
        folder.mkdir(parents=True)
        shutil.copy(path, folder / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(folder))
        counts[path.stem] = sum(
            sample.value
            for family in registry.collect()
            for sample in family.samples
            if sample.name == "argus_http_requests_total"
            and sample.labels == {"endpoint": "/healthz", "status": "200"}
        )
    return counts


@pytest.fixture
def metered_service(service_env, start_service, tmp_path):
    metrics_dir = tmp_path / "metrics"
    env = dict(service_env, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    publish_sample_mappings(env["ARGUS_STORE"], MAPPINGS_FILE)
    links = LinkRegistry(open_store(env["ARGUS_STORE"]))
    service = start_service(env, gunicorn_workers=2)
    service.metrics_dir = metrics_dir
    service.links = links
    return service


def test_metrics_add_up_workers(metered_service, channel_id, tmp_path):
    service = metered_service
    token = service.links.link(channel_id)
    before = requests.get(service.url + "/metrics", timeout=5).text

    def get_healthz(_: int) -> int:
        # A new connection per request, so that either worker may accept it.
        return requests.get(service.url + "/healthz", timeout=10).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(get_healthz, range(200)))
    body = dict(SAMPLE_RUN, argusToken=token)
    run_answers = [
        requests.post(service.url + "/run_info", json=body, timeout=10)
        for _ in range(5)
    ]
    after = requests.get(service.url + "/metrics", timeout=5).text

    assert statuses == [200] * 200
    assert [answer.text for answer in run_answers] == ["ok"] * 5

    def increase(name: str, **labels: str) -> float:
        return sample_value(after, name, **labels) - sample_value(
            before, name, **labels
        )

    healthz = {"endpoint": "/healthz", "status": "200"}
    run_info = {"endpoint": "/run_info", "status": "200"}
    assert increase("argus_http_requests_total", **healthz) == 200
    latencies = increase(
        "argus_http_request_duration_seconds_count", endpoint="/healthz"
    )
    assert latencies == 200
    assert increase("argus_http_requests_total", **run_info) == 5
    assert increase("argus_run_updates_total") == 5

    counts = per_worker_healthz(service.metrics_dir, tmp_path)
    serving = [name for name, count in counts.items() if count > 0]
    assert len(serving) == 2, counts
    assert sum(counts.values()) == sample_value(
        after, "argus_http_requests_total", **healthz
    )
