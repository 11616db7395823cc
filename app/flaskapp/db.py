"""One MongoClient per process, made on first use after fork."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pymongo
from bson import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import DESCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import (
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    WTimeoutError,
)
from pymongo.write_concern import WriteConcern

from .config import Settings
from .maintenance import Freeze, FreezeCheck

log = logging.getLogger(__name__)

COLLECTION = "records"
# An acknowledged write is on disk, on a majority of the replica set.
DURABLE = WriteConcern(w="majority", j=True)
# Serves GET /data: newest first, ties broken by id (the cursor's order).
LISTING_INDEX = [("created_at", DESCENDING), ("_id", DESCENDING)]
LISTING_INDEX_NAME = "created_at_-1__id_-1"

# Server codes that mean "the database cannot serve us now" rather than "the request is wrong":
# unauthorized/auth failed (credentials rotated or user not provisioned yet), shutting down,
# not primary, interrupted.
_UNAVAILABLE_CODES = frozenset({13, 18, 91, 189, 10107, 11600, 11602, 13435, 13436})
_NAMESPACE_NOT_FOUND = 26
# MongoDB's OutOfDiskSpace; FerretDB 1.24 on SQLite answers InternalError (1) with SQLite's
# SQLITE_FULL message instead.
_OUT_OF_DISK_SPACE = 14031
_SQLITE_FULL = "database or disk is full"


# Documents as the server sent them: their size is known before any decoding.
RAW = CodecOptions(document_class=RawBSONDocument, tz_aware=True)


class QueryTimeout(PyMongoError):
    """A read did not finish within APP_QUERY_TIMEOUT_MS."""


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database is unreachable or not serving right now."""
    if isinstance(exc, ConnectionFailure | ExecutionTimeout | WTimeoutError):
        return True
    return isinstance(exc, OperationFailure) and exc.code in _UNAVAILABLE_CODES


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` says the database's volume has no space left for the write."""
    if not isinstance(exc, OperationFailure):
        return False
    return exc.code == _OUT_OF_DISK_SPACE or _SQLITE_FULL in str(exc)


class Store:
    """Per-process access to the records collection.

    The client is created lazily and re-created when the process id changes, so a client
    made before gunicorn forks is never shared with a worker.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._client: MongoClient | None = None
        self._records: Collection | None = None
        self._indexed = False
        self._sorts_in_memory: bool | None = None
        self._freeze = FreezeCheck()

    def client(self) -> MongoClient:
        pid = os.getpid()
        if self._client is None or self._pid != pid:
            with self._lock:
                if self._client is None or self._pid != pid:
                    timeout = self._settings.mongodb_timeout_ms
                    self._client = MongoClient(
                        self._settings.mongodb_uri,
                        appname="flaskapp",
                        connect=False,
                        serverSelectionTimeoutMS=timeout,
                        connectTimeoutMS=timeout,
                        socketTimeoutMS=timeout,
                        waitQueueTimeoutMS=timeout,
                        maxPoolSize=16,
                        tz_aware=True,
                    )
                    self._pid = pid
                    self._records = self._client[self._settings.mongodb_database].get_collection(
                        COLLECTION, write_concern=DURABLE
                    )
                    self._indexed = False
                    self._sorts_in_memory = None
                    log.info(
                        "database client created",
                        extra={"pid": pid, "target": self._settings.mongodb_target},
                    )
        return self._client

    def database(self) -> Database:
        return self.client()[self._settings.mongodb_database]

    def records(self) -> Collection:
        """The records collection with durable writes; ensures the listing index once."""
        self.client()
        coll = self._records
        assert coll is not None
        if not self._indexed:
            coll.create_index(LISTING_INDEX, name=LISTING_INDEX_NAME)
            self._indexed = True
        return coll

    def raw_records(self) -> Collection:
        """The records collection returning RawBSONDocument, for reads bounded in bytes."""
        return self.records().with_options(codec_options=RAW)

    def sorts_in_memory(self) -> bool:
        """Whether the server sorts a collection in memory instead of walking an index.

        FerretDB 1.24 does for every sort (it reports ``ferretdbVersion`` in buildInfo);
        MongoDB serves the listing order from LISTING_INDEX."""
        if self._sorts_in_memory is None:
            self.records()  # the index too, once, before any time limit applies
            info = self.client().admin.command("buildInfo")
            self._sorts_in_memory = "ferretdbVersion" in info
        return self._sorts_in_memory

    def collection_bytes(self) -> int | None:
        """The records collection's size as the server reports it (collStats), 0 if absent,
        None when the server cannot tell: FerretDB 1.24 refreshes SQLite's statistics for it,
        a write that fails while its volume is full."""
        try:
            stats = self.database().command("collStats", COLLECTION)
        except OperationFailure as exc:
            if exc.code == _NAMESPACE_NOT_FOUND:
                return 0
            if is_disk_full(exc):
                return None
            raise
        return int(stats.get("size", 0))

    @contextmanager
    def time_limit(self) -> Iterator[None]:
        """Bound every operation inside to APP_QUERY_TIMEOUT_MS in all: the server gets the
        remaining time as maxTimeMS, the socket waits no longer."""
        try:
            with pymongo.timeout(self._settings.query_timeout_ms / 1000):
                yield
        except (ExecutionTimeout, NetworkTimeout) as exc:
            raise QueryTimeout(str(exc)) from exc

    def ping(self) -> None:
        self.database().command("ping")

    def write_freeze(self) -> Freeze | None:
        """The write freeze in force (flaskapp.maintenance), read at most once a second."""
        return self._freeze.current(self.database())
