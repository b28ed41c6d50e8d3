"""gunicorn settings for the Argus backend (``gunicorn -c gunicorn.conf.py app:app``).

Each setting can be overridden on the command line or with GUNICORN_CMD_ARGS.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

bind = os.environ.get("ARGUS_BIND", "0.0.0.0:3000")

# The work per request is small and mostly waits on the store, so a few
# processes with several threads each serve a small machine best.
workers = int(os.environ.get("ARGUS_WORKERS", min(4, (os.cpu_count() or 1) + 1)))
threads = int(os.environ.get("ARGUS_THREADS", 8))
worker_class = "gthread"
timeout = 30
keepalive = 5
# Time a worker gets after SIGTERM to finish requests and pending broadcasts.
graceful_timeout = 25

accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'

# prometheus_client keeps per-process values in this folder and /metrics adds
# them up; it must be set before any worker imports prometheus_client.
_metrics_dir = Path(
    os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    or Path(tempfile.gettempdir()) / f"argus-metrics-{os.getpid()}"
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)


def on_starting(server) -> None:
    # Values of an earlier run would be added to this one's.
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    _metrics_dir.mkdir(parents=True, exist_ok=True)


def post_worker_init(worker) -> None:
    worker.wsgi.extensions["argus"].start_background()


def worker_exit(server, worker) -> None:
    services = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("argus")
    if services is not None:
        services.shutdown(timeout=graceful_timeout - 3)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
