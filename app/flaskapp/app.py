"""The application factory: settings, logging, blueprints, error handlers, metrics, deadlines."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from . import metrics
from .api import bp as data_bp
from .auth import Guard, KeyRing
from .config import Settings, load_settings
from .db import Store
from .deadlines import ResponseDeadline
from .errors import register_error_handlers
from .limits import FailureTable, Slots, failures_path, slots_dir
from .logs import configure_logging, new_request_id
from .ops import bp as ops_bp

log = logging.getLogger("flaskapp.access")
_QUIET_ROUTES = frozenset({"/healthz", "/readyz"})


def create_app(settings: Settings | None = None) -> Flask:
    """Build the application. ``settings`` default to the validated environment."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["flaskapp.settings"] = settings
    app.extensions["flaskapp.store"] = Store(settings)
    app.extensions["flaskapp.listing_slots"] = Slots(
        slots_dir(settings.port), settings.listing_concurrency
    )
    failures = FailureTable(
        failures_path(settings.port),
        settings.auth_max_failures,
        settings.auth_failure_window_seconds,
    )
    app.extensions["flaskapp.auth"] = Guard(KeyRing(settings.api_keys), failures)
    if not settings.api_keys:
        logging.getLogger("flaskapp").warning(
            "APP_API_KEYS holds no key: every /data request is answered 401"
        )

    # Before the blueprints' hooks (authentication), so that their answers carry the id.
    @app.before_request
    def _start() -> None:
        g.request_id = new_request_id(request.headers.get("X-Request-ID"))
        g.started = time.perf_counter()

    app.register_blueprint(ops_bp)
    app.register_blueprint(data_bp)
    register_error_handlers(app)

    @app.after_request
    def _finish(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.observe(request.method, route, response.status_code, elapsed)
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        level = logging.DEBUG if route in _QUIET_ROUTES else logging.INFO
        if log.isEnabledFor(level):  # the fields cost more than the check
            fields = {
                "method": request.method,
                "path": request.path,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 2),
                "remote": request.remote_addr,
            }
            if "api_key" in g:
                fields["key"] = g.api_key
            log.log(level, "request", extra=fields)
        return response

    app.wsgi_app = ResponseDeadline(app.wsgi_app, settings.write_timeout_seconds)  # type: ignore[method-assign]
    return app
