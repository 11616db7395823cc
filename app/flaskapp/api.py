"""The /data resource: store, list, fetch and delete JSON records."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from . import records
from .db import LISTING_INDEX, Store
from .errors import ApiError

bp = Blueprint("data", __name__)


def _store() -> Store:
    return current_app.extensions["flaskapp.store"]


@bp.post("/data")
def create_record() -> tuple[Response, int, dict[str, str]]:
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "The body must be application/json.")
    payload = records.parse_object(_read_body())
    document: dict[str, Any] = {"created_at": records.now_ms(), "data": payload}
    result = _store().records().insert_one(document)
    record_id = str(result.inserted_id)
    body = {"id": record_id, "created_at": records.iso(document["created_at"])}
    return jsonify(body), 201, {"Location": url_for("data.get_record", record_id=record_id)}


def _read_body() -> bytes:
    """The request body, refusing one over the limit whether sized or chunked."""
    raw = request.get_data(cache=False)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    # Werkzeug stops a chunked body at the limit without saying whether more followed.
    chunked = request.content_length is None
    if chunked and len(raw) >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge
    return raw


@bp.get("/data")
def list_records() -> Response:
    limit = records.parse_limit(request.args.get("limit"))
    query: dict[str, Any] = {}
    cursor_text = request.args.get("cursor")
    if cursor_text is not None:
        created_at, last_id = records.decode_cursor(cursor_text)
        query = {
            "$or": [
                {"created_at": {"$lt": created_at}},
                {"created_at": created_at, "_id": {"$lt": last_id}},
            ]
        }
    found = list(_store().records().find(query).sort(LISTING_INDEX).limit(limit + 1))
    items = [records.to_json(doc) for doc in found[:limit]]
    next_cursor = None
    if len(found) > limit:
        last = found[limit - 1]
        next_cursor = records.encode_cursor(last["created_at"], last["_id"])
    return jsonify({"items": items, "limit": limit, "next_cursor": next_cursor})


@bp.get("/data/<record_id>")
def get_record(record_id: str) -> Response:
    oid = records.parse_id(record_id)
    document = _store().records().find_one({"_id": oid})
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
