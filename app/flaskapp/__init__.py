"""Flask + MongoDB JSON record service.

``create_app`` is imported lazily so that importing ``flaskapp.config`` (gunicorn's config
file does, in the master process) loads neither Flask's app nor the Prometheus client, whose
multiprocess mode must be set up before the first metric is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from .config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the application. ``settings`` default to the validated environment."""
    from .app import create_app as factory

    return factory(settings)
