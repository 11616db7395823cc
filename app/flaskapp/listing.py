"""Pages of records, newest first, bounded in count, in bytes and in time.

The order is LISTING_INDEX: ``created_at`` descending, ties broken by ``_id`` descending; a
page continues strictly after the cursor's (created_at, id), so paging visits every record
once. How a page is found depends on the server:

- MongoDB walks LISTING_INDEX, so a page costs the documents it returns.
- FerretDB 1.24 sorts in memory, holding every document the sort covers, whole, and reads
  every row of the collection for any filter but one on ``_id`` alone. A collection of at
  most SORT_MAX_BYTES (as the server measures it) is still sorted by the server in one pass
  (when the server cannot measure it, as on a full volume, it is read in two passes).
  A larger one is read in two passes that hold almost nothing: the keys alone (``_id`` and
  ``created_at``) without any sort, which the server streams in batches while the service
  keeps the newest ``limit + 1`` on a heap; then those records by ``_id``, which the server
  sorts among themselves. The server never holds more than one page of records; the time is
  two reads of the collection.

A page stops at ``limit`` records or when the next record would take the page over its byte
budget, whichever comes first, and always holds at least one record when one is left. The
budget counts the bytes the client receives: each record is encoded as it will be sent (a
control character stored as one byte is six in JSON, ``\\u0001``), and the page's own JSON
around the records counts too. The page's body is then joined from those encoded records, so
nothing is encoded twice.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import bson
from bson import CodecOptions, ObjectId
from bson.raw_bson import RawBSONDocument

from .db import LISTING_INDEX, Store
from .records import MAX_CURSOR, encode_cursor, to_json

# Keys stream from the server in batches of this many; the service's heap never holds more
# than one page of them.
KEY_BATCH = 1000
# Records arrive in batches this small, so a page of large records stops early.
PAGE_BATCH = 32
# Up to this size a FerretDB collection is sorted by the server in one pass: it then holds
# the whole collection in memory, a few times this in its own representation.
SORT_MAX_BYTES = 4 * 1024 * 1024
_DECODE = CodecOptions(tz_aware=True)

# One JSON value as the client receives it.
Encoder = Callable[[Any], bytes]


@dataclass(frozen=True)
class Page:
    """The records of a page, each already encoded, and where the next page starts."""

    items: list[bytes]
    next_cursor: str | None

    def body(self, limit: int, encode: Encoder) -> bytes:
        """The page as sent: ``{"items":[...],"limit":...,"next_cursor":...}`` and a newline,
        the form of Flask's compact ``jsonify``."""
        return b"".join(
            (
                b'{"items":[',
                b",".join(self.items),
                b'],"limit":',
                encode(limit),
                b',"next_cursor":',
                encode(self.next_cursor),
                b"}\n",
            )
        )


def frame_bytes(limit: int, encode: Encoder) -> int:
    """The most a page's JSON around its records can take: the body of an empty page whose
    cursor is as long as a cursor can be."""
    return len(Page([], "c" * MAX_CURSOR).body(limit, encode))


def older_than(after: tuple[datetime, ObjectId] | None) -> dict[str, Any]:
    """The filter for records after the cursor (created_at, id) in listing order."""
    if after is None:
        return {}
    created_at, last_id = after
    return {
        "$or": [
            {"created_at": {"$lt": created_at}},
            {"created_at": created_at, "_id": {"$lt": last_id}},
        ]
    }


def read_page(
    store: Store,
    limit: int,
    after: tuple[datetime, ObjectId] | None,
    max_bytes: int,
    encode: Encoder,
) -> Page:
    """One page of at most ``max_bytes`` as sent (one record when one alone is larger), read
    within the store's time limit; ``encode`` turns a record into the bytes sent for it."""
    query = older_than(after)
    budget = max_bytes - frame_bytes(limit, encode)
    in_memory = store.sorts_in_memory()  # asked once per process, outside the limit
    with store.time_limit():
        if not in_memory or _sortable(store.collection_bytes()):
            found = _sorted(store, query, limit + 1)
            items, last, cut = _fill(found, limit, budget, encode)
            return Page(items, encode_cursor(*last) if cut and last else None)
        keys = _newest_keys(store, query, limit + 1)
        if not keys:
            return Page([], None)
        by_id = {"_id": {"$in": [key["_id"] for key in keys]}}
        items, last, cut = _fill(_sorted(store, by_id, limit + 1), limit, budget, encode)
    if cut and last:
        return Page(items, encode_cursor(*last))
    if len(keys) > limit:
        # More records match, but some of this page's were deleted between the passes:
        # continue after the last one this page saw.
        return Page(items, encode_cursor(*(last or _order(keys[-1]))))
    return Page(items, None)


def _sortable(size: int | None) -> bool:
    """Whether the server may sort a collection of ``size`` bytes in one pass (an unknown
    size takes the two passes, which hold nothing whatever the size)."""
    return size is not None and size <= SORT_MAX_BYTES


def _order(key: dict[str, Any]) -> tuple[datetime, ObjectId]:
    return key["created_at"], key["_id"]


def _newest_keys(store: Store, query: dict[str, Any], count: int) -> list[dict[str, Any]]:
    keys = store.records().find(query, {"created_at": True}, batch_size=KEY_BATCH)
    with keys:
        listed = (
            key
            for key in keys
            if isinstance(key.get("created_at"), datetime) and isinstance(key["_id"], ObjectId)
        )
        return heapq.nlargest(count, listed, key=_order)


def _sorted(store: Store, query: dict[str, Any], count: int) -> Iterator[RawBSONDocument]:
    found = store.raw_records().find(
        query, sort=LISTING_INDEX, limit=count, batch_size=min(count, PAGE_BATCH)
    )
    with found:
        yield from found


def _fill(
    documents: Iterable[RawBSONDocument], limit: int, budget: int, encode: Encoder
) -> tuple[list[bytes], tuple[datetime, ObjectId] | None, bool]:
    """Take records in order up to ``limit`` and ``budget`` bytes as sent, the commas between
    them included (at least one record). Returns them encoded, the (created_at, id) of the
    last one, and whether records were left over."""
    items: list[bytes] = []
    used = 0
    last: tuple[datetime, ObjectId] | None = None
    for document in documents:
        if len(items) == limit:
            return items, last, True
        decoded = bson.decode(document.raw, codec_options=_DECODE)
        encoded = encode(to_json(decoded))
        size = len(encoded) + (1 if items else 0)
        if items and used + size > budget:
            return items, last, True
        items.append(encoded)
        last = _order(decoded)
        used += size
    return items, last, False
