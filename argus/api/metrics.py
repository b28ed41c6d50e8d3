"""GET /metrics: the service's Prometheus metrics.

Under gunicorn every worker process writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` (``gunicorn.conf.py`` sets it), and the worker that
serves the scrape adds up all the files. Without that variable, as under
``flask run`` and in tests, the process's default registry is served.
"""

from __future__ import annotations

import os

from flask import Blueprint
from flask import Response
from flask import request
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

bp = Blueprint("metrics", __name__)


def metrics_registry() -> Collector:
    """Return the registry to export: all worker files, or this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # A fresh registry per scrape: the collector reads the files each time,
        # and registering it on the default registry would count twice.
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


@bp.get("/metrics")
def metrics() -> Response:
    """Export the metrics in the format the scraper accepts (text by default)."""
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(metrics_registry())
    return Response(body, status=200, content_type=content_type)
