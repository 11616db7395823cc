"""The write freeze: a marker in the database that makes the service refuse writes for a while.

A replace restore (``python -m flaskapp.backup restore --replace``) sets the marker before it
swaps collections and clears it afterwards; while it is set, ``POST /data`` and
``DELETE /data/<id>`` answer 503 ``maintenance`` with ``Retry-After``, reads go on. The marker
carries an expiry, so a restore that dies half-way freezes writes for at most that long.

Every process reads the marker at most once per ``CHECK_SECONDS`` (``FreezeCheck``); a writer
that sets it waits ``SETTLE_SECONDS`` before it relies on it, which covers that cache and a
write already sent to the database.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database

# Collection of the marker, in the application's database.
COLLECTION = "maintenance"
# _id of the document that freezes writes to the records collection.
WRITES = "writes"
# How stale a process's answer to "are writes frozen?" may be.
CHECK_SECONDS = 1.0
# How long a writer waits after freezing before it relies on the freeze: the cache above and
# a write in flight (bounded by the service's MONGODB_TIMEOUT_MS, 3 s by default).
SETTLE_SECONDS = 5.0


@dataclass(frozen=True)
class Freeze:
    """A freeze in force: why, since when, until when at the latest."""

    reason: str
    since: datetime
    until: datetime

    def retry_after(self, now: datetime | None = None) -> int:
        """Seconds a client should wait before it tries again (1-60)."""
        left = (self.until - (now or datetime.now(UTC))).total_seconds()
        return max(1, min(60, int(left) + 1))


def _read(document: dict[str, Any] | None, now: datetime) -> Freeze | None:
    if document is None:
        return None
    until = document.get("until")
    since = document.get("since")
    if not isinstance(until, datetime) or not isinstance(since, datetime):
        return None
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if until <= now:
        return None
    return Freeze(str(document.get("reason", "")), since, until)


def freeze(db: Database, reason: str, seconds: float) -> Freeze:
    """Freeze writes for at most ``seconds`` (the caller thaws them sooner)."""
    now = datetime.now(UTC)
    until = now + timedelta(seconds=seconds)
    db[COLLECTION].replace_one(
        {"_id": WRITES},
        {"_id": WRITES, "reason": reason, "since": now, "until": until},
        upsert=True,
    )
    return Freeze(reason, now, until)


def thaw(db: Database) -> None:
    """Let writes through again."""
    db[COLLECTION].delete_one({"_id": WRITES})


def current(db: Database) -> Freeze | None:
    """The freeze in force, read from the database now, or None."""
    return _read(db[COLLECTION].find_one({"_id": WRITES}), datetime.now(UTC))


class FreezeCheck:
    """One process's view of the freeze, read from the database at most every CHECK_SECONDS."""

    def __init__(self, interval: float = CHECK_SECONDS) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._document: dict[str, Any] | None = None

    def current(self, db: Database) -> Freeze | None:
        moment = time.monotonic()
        if moment - self._checked_at >= self._interval:
            document = db[COLLECTION].find_one({"_id": WRITES})
            with self._lock:
                self._document = document
                self._checked_at = moment
        return _read(self._document, datetime.now(UTC))
