"""Restore the records collection from a backup file.

Nothing is written before the whole file has been verified (header, every record line, count
and SHA-256). The records then go into a staging collection with the backup's indexes, and
only a complete, counted staging collection takes the place of ``records`` (renameCollection;
on MongoDB atomically with dropTarget, on FerretDB 1.24, which lacks dropTarget, by dropping
``records`` just before the rename). A failure before that point drops the staging collection
and leaves ``records`` as it was.

An existing non-empty ``records`` is refused unless ``replace`` is set; with it, the records
afterwards are exactly the backup's. Writes that arrive while a restore runs are lost when it
replaces the collection; restore with the service idle.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymongo import IndexModel, MongoClient
from pymongo.database import Database
from pymongo.errors import OperationFailure

from ..db import COLLECTION, DURABLE
from . import archive

log = logging.getLogger("flaskapp.backup")

STAGING_PREFIX = f"{COLLECTION}_restore_"
# Documents, and bytes of their lines, an insert at most.
BATCH_DOCUMENTS = 1000
BATCH_BYTES = 8 << 20
NAMESPACE_EXISTS = 48
NOT_IMPLEMENTED = 238
SWAP_ATTEMPTS = 3


@dataclass
class Restored:
    name: str
    database: str
    count: int
    indexes: int
    replaced: int
    created: str
    seconds: float


def _existing(db: Database) -> int:
    return db[COLLECTION].count_documents({})


def _drop_leftovers(db: Database) -> None:
    for name in db.list_collection_names():
        if name.startswith(STAGING_PREFIX):
            log.warning(
                "dropping the staging collection of an earlier restore", extra={"name": name}
            )
            db.drop_collection(name)


def _index_models(indexes: list[dict[str, Any]]) -> list[IndexModel]:
    return [
        IndexModel(
            [(field, direction) for field, direction in index["key"]],
            name=index["name"],
            **index["options"],
        )
        for index in indexes
    ]


def _load(db: Database, staging: str, path: Path, summary: archive.Summary) -> None:
    collection = db.get_collection(staging, write_concern=DURABLE)
    batch: list[dict[str, Any]] = []
    batch_bytes = 0
    for _, line in archive.scan(path):
        batch.append(archive.decode_record(line))
        batch_bytes += len(line)
        if len(batch) >= BATCH_DOCUMENTS or batch_bytes >= BATCH_BYTES:
            collection.insert_many(batch, ordered=True)
            batch, batch_bytes = [], 0
    if batch:
        collection.insert_many(batch, ordered=True)
    models = _index_models(summary.indexes)
    if models:
        collection.create_indexes(models)
    loaded = collection.count_documents({})
    if loaded != summary.count:
        raise archive.BackupError(
            "database",
            f"the staging collection holds {loaded} records after loading {summary.count}",
        )


def _refuse_if_not_empty(db: Database, summary: archive.Summary) -> None:
    existing = _existing(db)
    if existing:
        raise archive.BackupError(
            "not_empty",
            f"the records collection of database '{db.name}' holds {existing} records, "
            f"and restore does not write over them unless told to (--replace replaces "
            f"them with the {summary.count} records of {summary.name})",
            file=summary.name,
            existing=existing,
            records=summary.count,
        )


def _swap(db: Database, staging: str, replace: bool, summary: archive.Summary) -> None:
    """Give the staging collection the name ``records``.

    Until ``records`` is dropped, a failure drops the staging collection and leaves
    ``records`` as it was; after, the staging collection is kept and named in the error."""
    admin = db.client.admin
    source, target = f"{db.name}.{staging}", f"{db.name}.{COLLECTION}"
    try:
        if not replace:
            _refuse_if_not_empty(db, summary)
        try:
            admin.command("renameCollection", source, to=target, dropTarget=True)
            return
        except OperationFailure as exc:
            if exc.code != NOT_IMPLEMENTED:
                raise
        for _ in range(SWAP_ATTEMPTS):
            if not replace:
                _refuse_if_not_empty(db, summary)
            db.drop_collection(COLLECTION)
            try:
                admin.command("renameCollection", source, to=target)
                return
            except OperationFailure as exc:
                if exc.code != NAMESPACE_EXISTS:
                    raise archive.BackupError(
                        "database",
                        f"{target} was dropped and renaming {staging} to it failed ({exc}): "
                        f"the restored records are in {staging}",
                    ) from None
    except archive.BackupError as exc:
        if exc.reason != "database":
            db.drop_collection(staging)
        raise
    except BaseException:
        db.drop_collection(staging)
        raise
    db.drop_collection(staging)
    raise archive.BackupError(
        "changed", f"records kept arriving in {target} while it was being replaced"
    )


def restore(client: MongoClient, database: str, path: Path, replace: bool) -> Restored:
    started = time.monotonic()
    summary = archive.verify(path)
    header = summary.header
    if header["collection"] != COLLECTION:
        raise archive.BackupError(
            "usage", f"{path.name} is a backup of '{header['collection']}', not of '{COLLECTION}'"
        )
    log.info(
        "backup verified",
        extra={
            "file": path.name,
            "records": summary.count,
            "sha256": summary.sha256,
            "from_database": header["database"],
            "database": database,
        },
    )
    db = client[database]
    existing = _existing(db)
    if not replace:
        _refuse_if_not_empty(db, summary)
    _drop_leftovers(db)
    staging = f"{STAGING_PREFIX}{time.time_ns() // 1_000_000}"
    db.create_collection(staging)
    try:
        _load(db, staging, path, summary)
    except BaseException:
        db.drop_collection(staging)
        raise
    _swap(db, staging, replace, summary)
    return Restored(
        name=path.name,
        database=database,
        count=summary.count,
        indexes=len(summary.indexes),
        replaced=existing,
        created=header["created"],
        seconds=time.monotonic() - started,
    )
