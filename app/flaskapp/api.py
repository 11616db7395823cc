"""The /data resource: store, list, fetch and delete JSON records."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from . import listing, records
from .config import Settings
from .db import Store
from .errors import ApiError
from .limits import Slots

bp = Blueprint("data", __name__)


def _store() -> Store:
    return current_app.extensions["flaskapp.store"]


@bp.post("/data")
def create_record() -> tuple[Response, int, dict[str, str]]:
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "The body must be application/json.")
    payload = records.parse_object(_read_body())
    document: dict[str, Any] = {"created_at": records.now_ms(), "data": payload}
    record_id = str(_store().records().insert_one(document).inserted_id)
    body = {"id": record_id, "created_at": records.iso(document["created_at"])}
    return jsonify(body), 201, {"Location": f"{request.script_root}/data/{record_id}"}


def _read_body() -> bytes:
    """The request body, refusing one over the limit whether sized or chunked."""
    limit: int = current_app.config["MAX_CONTENT_LENGTH"]
    length = request.content_length
    if length is not None and length > limit:
        raise RequestEntityTooLarge
    # The server's input stream ends where the body ends, sized or chunked; one byte more
    # than the limit tells a chunked body over the limit apart.
    raw: bytes = request.environ["wsgi.input"].read(limit + 1 if length is None else length)
    if len(raw) > limit:
        raise RequestEntityTooLarge
    return raw


@bp.get("/data")
def list_records() -> Response:
    limit = records.parse_limit(request.args.get("limit"))
    cursor_text = request.args.get("cursor")
    after = records.decode_cursor(cursor_text) if cursor_text is not None else None
    settings: Settings = current_app.extensions["flaskapp.settings"]
    slots: Slots = current_app.extensions["flaskapp.listing_slots"]
    with slots.hold() as held:
        if not held:
            raise ApiError(
                503,
                "listing_busy",
                f"{slots.count} listings are already running; retry later.",
                {"Retry-After": "1"},
            )
        page = listing.read_page(_store(), limit, after, settings.listing_max_bytes)
    return jsonify({"items": page.items, "limit": limit, "next_cursor": page.next_cursor})


@bp.get("/data/<record_id>")
def get_record(record_id: str) -> Response:
    oid = records.parse_id(record_id)
    store = _store()
    collection = store.records()
    with store.time_limit():
        document = collection.find_one({"_id": oid})
    if document is None:
        raise ApiError(404, "not_found", f"No record with id {record_id}.")
    return jsonify(records.to_json(document))


@bp.delete("/data/<record_id>")
def delete_record(record_id: str) -> tuple[str, int]:
    oid = records.parse_id(record_id)
    result = _store().records().delete_one({"_id": oid})
    if result.deleted_count == 0:
        raise ApiError(404, "not_found", f"No record with id {record_id}.")
    return "", 204
