"""The /data resource: store, list, fetch and delete JSON records, for clients with a key."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from . import deadlines, listing, records
from .auth import Guard
from .config import Settings
from .db import Store
from .errors import ApiError
from .limits import Slots

bp = Blueprint("data", __name__)

PREFIX = "/data"
# Methods that change records: they need a key of scope "write".
WRITES = frozenset({"POST", "DELETE"})


def _store() -> Store:
    return current_app.extensions["flaskapp.store"]


def _settings() -> Settings:
    return current_app.extensions["flaskapp.settings"]


@bp.before_app_request
def authenticate() -> None:
    """Every request under /data, whatever its method and whether or not a route matches,
    needs a key; the key's name goes to the access log."""
    path = request.path
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        return
    guard: Guard = current_app.extensions["flaskapp.auth"]
    key = guard.check(
        request.headers.get("Authorization"),
        request.remote_addr or "",
        write=request.method in WRITES,
    )
    g.api_key = key.name


def _writable(store: Store) -> None:
    """Refuse a write while a write freeze (flaskapp.maintenance) is in force."""
    freeze = store.write_freeze()
    if freeze is not None:
        raise ApiError(
            503,
            "maintenance",
            "Writes are paused for maintenance; reads go on. Retry later.",
            {"Retry-After": str(freeze.retry_after())},
        )


@bp.post("/data")
def create_record() -> tuple[Response, int, dict[str, str]]:
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "The body must be application/json.")
    payload = records.parse_object(_read_body())
    store = _store()
    _writable(store)
    document: dict[str, Any] = {"created_at": records.now_ms(), "data": payload}
    record_id = str(store.records().insert_one(document).inserted_id)
    body = {"id": record_id, "created_at": records.iso(document["created_at"])}
    return jsonify(body), 201, {"Location": f"{request.script_root}/data/{record_id}"}


def _read_body() -> bytes:
    """The request body, refusing one over the limit whether sized or chunked, and one that
    does not arrive within APP_BODY_TIMEOUT_SECONDS."""
    limit: int = current_app.config["MAX_CONTENT_LENGTH"]
    length = request.content_length
    if length is not None and length > limit:
        raise RequestEntityTooLarge
    seconds = _settings().body_timeout_seconds
    try:
        with deadlines.receiving(request.environ, seconds):
            # The server's input stream ends where the body ends, sized or chunked; one byte
            # more than the limit tells a chunked body over the limit apart.
            raw: bytes = request.environ["wsgi.input"].read(limit + 1 if length is None else length)
    except deadlines.BodyTimeout:
        raise ApiError(
            408, "request_timeout", f"The request body did not arrive within {seconds} s."
        ) from None
    if len(raw) > limit:
        raise RequestEntityTooLarge
    return raw


@bp.get("/data")
def list_records() -> Response:
    limit = records.parse_limit(request.args.get("limit"))
    cursor_text = request.args.get("cursor")
    after = records.decode_cursor(cursor_text) if cursor_text is not None else None
    slots: Slots = current_app.extensions["flaskapp.listing_slots"]
    slot = slots.take()
    if slot is None:
        raise ApiError(
            503,
            "listing_busy",
            f"{slots.count} listings are already running; retry later.",
            {"Retry-After": "1"},
        )
    try:
        page = listing.read_page(_store(), limit, after, _settings().listing_max_bytes, _encode)
        response = current_app.response_class(
            page.body(limit, _encode), mimetype=current_app.json.mimetype
        )
    except BaseException:
        slot.close()
        raise
    # The slot is held until the page has been sent (or its deadline cut the client off), so
    # pages waiting on slow readers hold at most APP_LISTING_CONCURRENCY pages' memory.
    response.call_on_close(slot.close)
    return response


def _encode(value: object) -> bytes:
    """A value as the service's JSON responses carry it (Flask's compact form)."""
    return current_app.json.dumps(value, separators=(",", ":")).encode()


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
    store = _store()
    _writable(store)
    result = store.records().delete_one({"_id": oid})
    if result.deleted_count == 0:
        raise ApiError(404, "not_found", f"No record with id {record_id}.")
    return "", 204
