"""The least a Python service can do for POST /data: the floor that bench_api.py measures.

A bare WSGI callable under the service's own gunicorn settings: it reads the JSON body, inserts
it with the service's write concern, and answers 201 with the id. No Flask, no validation, no
metrics, no logs. What the service costs beyond raw ``insert_one`` splits in two: this floor
(the HTTP hop, gunicorn and a worker's pymongo) and the service above it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from flaskapp.db import COLLECTION, DURABLE
from pymongo import MongoClient
from pymongo.collection import Collection

StartResponse = Callable[[str, list[tuple[str, str]]], object]
_records: Collection[dict[str, Any]] | None = None


def _collection() -> Collection[dict[str, Any]]:
    """One client per worker process, made on its first request (after gunicorn's fork)."""
    global _records
    if _records is None:
        client: MongoClient[dict[str, Any]] = MongoClient(os.environ["MONGODB_URI"], tz_aware=True)
        _records = client[os.environ["MONGODB_DATABASE"]].get_collection(
            COLLECTION, write_concern=DURABLE
        )
    return _records


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ["REQUEST_METHOD"] != "POST":
        # The readiness probe of the benchmark's server harness.
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = json.loads(environ["wsgi.input"].read(length))
    document = {"created_at": datetime.now(UTC), "data": data}
    record_id = _collection().insert_one(document).inserted_id
    body = json.dumps({"id": str(record_id)}).encode()
    start_response(
        "201 Created",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
