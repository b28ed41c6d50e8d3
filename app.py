"""The WSGI entry point for gunicorn and ``flask --app app``."""

from __future__ import annotations

import sys

from argus import create_app
from argus.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    sys.exit(f"argus: {error}")
