"""A restore drill: restore a backup beside the live records and compare, touching nothing.

The backup (verified whole first) is loaded into a fresh scratch collection of the
application database, ``records_drill_<stamp>``, with its indexes, exactly as a restore loads
its staging collection. The scratch records that match the filter (a MongoDB filter; default:
all) are compared with the live ``records`` by ``_id``, byte for byte as the server returns
them: identical, changed, or missing from the live collection. The scratch collection is
dropped at the end, also when anything fails; a drill that was killed leaves one, which a
drill dropping leftovers older than STALE_SCRATCH_SECONDS removes. Neither ``records`` nor the
write freeze is touched.

Memory: the ids of the matched records and a SHA-256 of each (about 150 bytes a record).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bson import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import OperationFailure, PyMongoError

from ..db import COLLECTION, is_unavailable
from . import archive
from .restore import index_models, load, until_answered

log = logging.getLogger("flaskapp.backup")

SCRATCH_PREFIX = f"{COLLECTION}_drill_"
# A scratch collection this old belongs to a drill that died.
STALE_SCRATCH_SECONDS = 3600
# Up to this many matched ids are looked up in the live collection with one $in query;
# beyond it the live collection is read once instead.
LOOKUP_IDS = 1000
# How long the drop of the scratch collection is tried again while the database does not answer.
DROP_SECONDS = 30.0
RAW = CodecOptions(document_class=RawBSONDocument, tz_aware=True)


@dataclass
class Drilled:
    backup: str
    records: int
    matched: int
    identical: int
    changed: int
    missing_live: int
    scratch_dropped: bool
    scratch: str
    seconds: float

    def report(self) -> dict[str, object]:
        """The line ``drill`` prints: the fields the callers read."""
        return {
            "backup": self.backup,
            "records": self.records,
            "matched": self.matched,
            "identical": self.identical,
            "changed": self.changed,
            "missing_live": self.missing_live,
            "scratch_dropped": self.scratch_dropped,
        }


def _drop_stale(db: Database) -> None:
    now_ms = time.time_ns() // 1_000_000
    for name in db.list_collection_names():
        stamp = name.removeprefix(SCRATCH_PREFIX)
        old = stamp.isdigit() and now_ms - int(stamp) > STALE_SCRATCH_SECONDS * 1000
        if name.startswith(SCRATCH_PREFIX) and old:
            log.warning(
                "dropping the scratch collection of a drill that died", extra={"name": name}
            )
            db.drop_collection(name)


def _digests(db: Database, scratch: str, match: dict[str, Any]) -> dict[Any, bytes]:
    try:
        found = db.get_collection(scratch, codec_options=RAW).find(match)
        return {raw["_id"]: hashlib.sha256(raw.raw).digest() for raw in found}
    except OperationFailure as exc:
        if is_unavailable(exc):
            raise
        first = str(exc).split(", full error")[0]
        raise archive.BackupError(
            "usage", f"--match is not a filter the database accepts ({first})"
        ) from None


def _compare(db: Database, expected: dict[Any, bytes]) -> tuple[int, int]:
    """(identical, changed) of the expected records found in the live collection."""
    query = {"_id": {"$in": list(expected)}} if len(expected) <= LOOKUP_IDS else {}
    identical = changed = 0
    for raw in db.get_collection(COLLECTION, codec_options=RAW).find(query):
        digest = expected.get(raw["_id"])
        if digest is None:
            continue
        if hashlib.sha256(raw.raw).digest() == digest:
            identical += 1
        else:
            changed += 1
    return identical, changed


def drill(client: MongoClient, database: str, path: Path, match: dict[str, Any]) -> Drilled:
    started = time.monotonic()
    summary = archive.verify(path)
    db = client[database]
    _drop_stale(db)
    scratch = f"{SCRATCH_PREFIX}{time.time_ns() // 1_000_000}"
    log.info("drill started", extra={"file": path.name, "scratch": scratch})
    dropped = False
    try:
        load(db, scratch, path, summary, index_models(db, summary.indexes))
        expected = _digests(db, scratch, match)
        identical, changed = _compare(db, expected) if expected else (0, 0)
    finally:
        try:
            until_answered(time.monotonic() + DROP_SECONDS, lambda: db.drop_collection(scratch))
            dropped = True
        except PyMongoError as exc:
            log.error(
                "could not drop the scratch collection",
                extra={"scratch": scratch, "error": str(exc).splitlines()[0]},
            )
    return Drilled(
        backup=path.name,
        records=summary.count,
        matched=len(expected),
        identical=identical,
        changed=changed,
        missing_live=len(expected) - identical - changed,
        scratch_dropped=dropped,
        scratch=scratch,
        seconds=time.monotonic() - started,
    )
