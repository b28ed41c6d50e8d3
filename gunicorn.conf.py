"""gunicorn settings for the Argus backend (``gunicorn -c gunicorn.conf.py app:app``).

Each setting can be overridden on the command line or with GUNICORN_CMD_ARGS.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import gunicorn.http.wsgi

from argus.logs import logging_config

# gunicorn 27.0.1 has no setting for its "Server: gunicorn" header. Every
# response reads the constant gunicorn.http.wsgi.SERVER, which is replaced here
# so that responses do not name the server software.
gunicorn.http.wsgi.SERVER = "argus"

bind = os.environ.get("ARGUS_BIND", "0.0.0.0:3000")

# The work per request is small and mostly waits on the store, so a few
# processes with several threads each serve a small machine best.
workers = int(os.environ.get("ARGUS_WORKERS", min(4, (os.cpu_count() or 1) + 1)))
threads = int(os.environ.get("ARGUS_THREADS", 8))
# gthread with a timeout on every client read and send, so stalled clients
# cannot hold the request threads.
worker_class = "argus.server.TimeoutThreadWorker"
timeout = 30
keepalive = 5
# Time a worker gets after SIGTERM to finish requests and pending broadcasts.
# fly.toml's kill_timeout must be longer, or the platform kills the machine
# before the broadcasts went out.
graceful_timeout = 25
# The service does not use the control socket of gunicorn 25.1 and later, and
# its default path under $HOME would be shared by every instance on a machine.
control_socket_disable = True

# gunicorn's own lines go through the service's log format. Invalid values
# fall back to the defaults here; the app then stops with a clear message.
_log_level = os.environ.get("ARGUS_LOG_LEVEL", "").strip().lower()
if _log_level not in ("debug", "info", "warning", "error"):
    _log_level = "info"
_log_format = os.environ.get("ARGUS_LOG_FORMAT", "").strip().lower()
loglevel = _log_level
logconfig_dict = logging_config(_log_level, _log_format)

accesslog = "-"
# %(U)s is the path without the query string, which can contain Argus tokens,
# OAuth codes and states. The request id is added by the log formatter.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'

# prometheus_client keeps per-process values in this folder and /metrics adds
# them up; it must be set before any worker imports prometheus_client.
_metrics_dir = Path(
    os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    or Path(tempfile.gettempdir()) / f"argus-metrics-{os.getpid()}"
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)
# on_starting() empties it before the server starts. It is created here too
# because --check-config and --print-config load the app without that hook.
_metrics_dir.mkdir(parents=True, exist_ok=True)


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
