"""Operational endpoints: welcome, liveness, readiness and the API document; open to all.

Metrics are not served here: gunicorn's master serves them on APP_METRICS_PORT
(flaskapp.exporter), so the public port answers 404 for /metrics."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from functools import cache
from importlib import resources

from flask import Blueprint, Response, current_app, jsonify

from .db import is_unavailable
from .errors import error_response
from .records import iso

bp = Blueprint("ops", __name__)
log = logging.getLogger(__name__)


@cache
def openapi_document() -> dict[str, object]:
    text = resources.files(__package__).joinpath("openapi.json").read_text(encoding="utf-8")
    return json.loads(text)


@bp.get("/")
def index() -> Response:
    return jsonify(
        {
            "message": "Welcome to the Flask MongoDB service.",
            "time": iso(datetime.now(UTC)),
        }
    )


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    try:
        current_app.extensions["flaskapp.store"].ping()
    except Exception as exc:
        if not is_unavailable(exc):
            log.error("readiness check failed", exc_info=exc)
        else:
            log.warning("readiness check failed", extra={"error": type(exc).__name__})
        return error_response(
            503, "database_unavailable", "The database is unreachable.", status="unavailable"
        )
    return jsonify({"status": "ready"})


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())
