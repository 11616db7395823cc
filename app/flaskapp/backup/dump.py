"""Dump the records collection to a backup file, streaming.

Consistency: the dump is a cut at its start time T (the ``created`` of its header). It holds
every record created at or before T (``created_at <= T``) that still exists when the scan
reaches it, each once, and no record created after T. Records are scanned in natural order
without a sort (FerretDB sorts in memory), a batch at a time, so memory does not grow with the
collection. A record deleted while the dump runs is in it if the scan read it first. Documents
without a date ``created_at`` (not written by the service) are kept whenever the scan meets them.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bson
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from ..db import COLLECTION
from . import archive, catalog

log = logging.getLogger("flaskapp.backup")

# Documents a batch from the server, at most, and their size, roughly: the batch stays raw
# BSON until each record is written. FerretDB bounds a batch by count only, and refuses a
# reply over its 48 MB message limit, so the count follows the collection's average size.
BATCH_SIZE = 1000
BATCH_BYTES = 8 << 20
PROGRESS_SECONDS = 10.0
DECODE = CodecOptions(tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_AUTO)
RAW = CodecOptions(document_class=RawBSONDocument)


@dataclass
class Dumped:
    name: str
    path: Path
    created: str
    count: int
    left_out: int
    size: int
    sha256: str
    seconds: float
    engine: str
    indexes: int
    scheduled: bool


def engine_of(client: MongoClient) -> str:
    info = client.admin.command("buildInfo")
    if "ferretdbVersion" in info:
        return f"FerretDB {info['ferretdbVersion'].removeprefix('v')}"
    return f"MongoDB {info.get('version', 'unknown')}"


def index_specs(client: MongoClient, database: str) -> list[dict[str, Any]]:
    """The collection's indexes but _id's, as name, key (ordered pairs) and options."""
    specs = []
    for spec in client[database][COLLECTION].list_indexes():
        if spec["name"] == "_id_":
            continue
        specs.append(
            {
                "name": spec["name"],
                "key": [[field, direction] for field, direction in spec["key"].items()],
                "options": {k: v for k, v in spec.items() if k not in ("v", "ns", "key", "name")},
            }
        )
    return specs


def collection_stats(client: MongoClient, database: str) -> dict[str, Any]:
    """collStats of the records collection; empty when the server has none to give."""
    try:
        return dict(client[database].command("collStats", COLLECTION))
    except OperationFailure:
        return {}


def collection_bytes(stats: dict[str, Any]) -> int:
    """The collection's size as the server reports it (0 when unknown or empty)."""
    return int(stats.get("size") or 0)


def batch_size(stats: dict[str, Any]) -> int:
    """Documents a batch so that a batch of average documents is about BATCH_BYTES."""
    average = int(stats.get("avgObjSize") or 0)
    return max(1, min(BATCH_SIZE, BATCH_BYTES // average)) if average > 0 else BATCH_SIZE


def cut_time(now: datetime | None = None) -> datetime:
    """The dump's start, to the millisecond (the precision of created_at)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def dump(
    client: MongoClient,
    database: str,
    directory: Path,
    stats: dict[str, Any],
    scheduled: bool = False,
) -> Dumped:
    """Write a backup of the collection whose collStats are ``stats`` (read by the caller
    for its space check), marked as the schedule's when ``scheduled``."""
    catalog.check_directory(directory)
    started = time.monotonic()
    cut = cut_time()
    name = catalog.name_for(cut)
    created = cut.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    engine = engine_of(client)
    indexes = index_specs(client, database)
    header = {
        "database": database,
        "collection": COLLECTION,
        "created": created,
        "engine": engine,
        "indexes": indexes,
        "scheduled": scheduled,
        "collection_bytes": collection_bytes(stats),
    }
    log.info(
        "dump started",
        extra={
            "file": name,
            "database": database,
            "cut": created,
            "engine": engine,
            "scheduled": scheduled,
        },
    )
    partial = directory / catalog.partial_for(name)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    left_out = 0
    try:
        with os.fdopen(descriptor, "wb", buffering=1 << 20) as out:
            writer = archive.Writer(out, header)
            records = client[database].get_collection(COLLECTION, codec_options=RAW)
            next_report = time.monotonic() + PROGRESS_SECONDS
            for raw in records.find({}, batch_size=batch_size(stats)):
                document = bson.decode(raw.raw, DECODE)
                created_at = document.get("created_at")
                if isinstance(created_at, datetime) and created_at > cut:
                    left_out += 1
                    continue
                writer.record(document)
                if time.monotonic() >= next_report:
                    log.info("dump progress", extra={"records": writer.count, "bytes": writer.size})
                    next_report = time.monotonic() + PROGRESS_SECONDS
            digest = writer.finish()
            out.flush()
            os.fsync(out.fileno())
        catalog.publish(partial, directory / name)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Dumped(
        name=name,
        path=directory / name,
        created=created,
        count=writer.count,
        left_out=left_out,
        size=writer.size,
        sha256=digest,
        seconds=time.monotonic() - started,
        engine=engine,
        indexes=len(indexes),
        scheduled=scheduled,
    )
