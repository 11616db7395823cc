"""Every error leaves the service as JSON: {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify
from pymongo.errors import PyMongoError, WriteError
from werkzeug.exceptions import HTTPException

from . import metrics
from .db import QueryTimeout, is_disk_full, is_unavailable

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered with ``status`` and a machine-readable ``code``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(http_status: int, code: str, message: str, **extra: object) -> Response:
    body: dict[str, object] = {"error": {"code": code, "message": message}, **extra}
    if "request_id" in g:
        body["request_id"] = g.request_id
    response = jsonify(body)
    response.status_code = http_status
    return response


def _http_code(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        response = error_response(exc.status, exc.code, exc.message)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        response = error_response(status, _http_code(exc), exc.description or exc.name)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(PyMongoError)
    def _database_error(exc: PyMongoError) -> Response:
        if isinstance(exc, QueryTimeout):
            log.warning("query over its time limit", extra={"error": str(exc)[:300]})
            response = error_response(
                503, "query_timeout", "The query did not finish within its time limit."
            )
            response.headers["Retry-After"] = "5"
            return response
        if is_unavailable(exc):
            metrics.DB_ERRORS.inc()
            log.warning("database unavailable", extra={"error": type(exc).__name__})
            response = error_response(
                503, "database_unavailable", "The database is unavailable; retry later."
            )
            response.headers["Retry-After"] = "5"
            return response
        if is_disk_full(exc):
            metrics.DISK_FULL.inc()
            log.warning("database volume full", extra={"error": str(exc)[:300]})
            response = error_response(
                507,
                "insufficient_storage",
                "The database has no space left for this write; reads go on. Retry later.",
            )
            response.headers["Retry-After"] = "30"
            return response
        if isinstance(exc, WriteError):
            # The server refused this document (for example FerretDB's "nested arrays are
            # not supported"): the client can change it, so it is a 400, not a 500.
            detail = str(exc.details.get("errmsg") if exc.details else exc)[:300]
            log.info("database refused document", extra={"code": exc.code, "detail": detail})
            return error_response(
                400, "rejected_by_database", f"The database refused the document: {detail}"
            )
        log.error("database error", exc_info=exc)
        return error_response(500, "database_error", "The database rejected the operation.")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.error("unhandled exception", exc_info=exc)
        return error_response(500, "internal_error", "Internal server error.")
