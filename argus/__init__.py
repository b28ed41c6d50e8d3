"""Argus backend: shows a streamer's live Hades II run in a Twitch extension."""

from __future__ import annotations

from typing import Any

from flask import Flask

from argus.config import Settings
from argus.config import load_settings

# Clients send one run state of a few kilobytes; anything larger is refused
# from the Content-Length header before the body is read.
MAX_BODY_BYTES = 64 * 1024


def create_app(
    settings: Settings | None = None, test_config: dict[str, Any] | None = None
) -> Flask:
    """Create and configure the service; raise ConfigError on a bad setting."""
    from argus.api import auth
    from argus.api import errors
    from argus.api import health
    from argus.api import hooks
    from argus.api import metrics
    from argus.api import run_info
    from argus.api import security
    from argus.api import viewer
    from argus.cli import cli
    from argus.logs import configure_logging
    from argus.services import Services

    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)

    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, JSON_SORT_KEYS=False)
    if test_config:
        app.config.update(test_config)

    app.extensions["argus"] = Services(settings)
    hooks.init_app(app)
    security.init_app(app)
    errors.register_error_handlers(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(run_info.bp)
    app.register_blueprint(viewer.bp)
    app.cli.add_command(cli)
    return app
