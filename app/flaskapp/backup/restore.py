"""Restore the records collection from a backup file: freeze writes, load, swap, thaw.

Nothing is written before the whole file has been verified (header, every record line, count
and SHA-256). Then:

1. writes are frozen (``flaskapp.maintenance``: the service answers POST and DELETE with 503
   ``maintenance``). The freeze is a lease that a thread renews every RENEW_SECONDS, so its
   expiry always lies about LEASE_SECONDS ahead of the restore, and a restore that dies
   without a word frees writes within LEASE_SECONDS;
2. the records go into a staging collection ``records_restore_<stamp>``, which gets the
   backup's indexes, the other indexes of ``records`` and the service's listing index, and is
   counted;
3. once the freeze has settled (maintenance.SETTLE_SECONDS after it was set), the swap, with
   the freeze held for SWAP_FREEZE_SECONDS: ``records`` is renamed to
   ``records_previous_<stamp>``, the staging collection to ``records``, and only then is the
   previous collection dropped;
4. writes are thawed, whatever happened.

A failure before the staging collection has taken the name ``records`` leaves the previous
records in ``records`` (renamed back if they had been moved; anything written to a new
``records`` meanwhile is moved into them first) and drops the staging collection. A database
that goes away is waited for up to ``recovery_seconds``; past that, the error says which
collection holds what, writes stay frozen, and ``recover`` (also the first step of every
restore) finishes the job: with both collections of a stamp left it puts the previous records
back, with the previous one alone (the swap was done) it drops it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pymongo import IndexModel, MongoClient
from pymongo.database import Database
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, PyMongoError

from .. import maintenance
from ..db import COLLECTION, DURABLE, LISTING_INDEX, LISTING_INDEX_NAME
from . import archive
from .dump import index_specs
from .text import records

log = logging.getLogger("flaskapp.backup")

STAGING_PREFIX = f"{COLLECTION}_restore_"
PREVIOUS_PREFIX = f"{COLLECTION}_previous_"
# Documents, and bytes of their lines, an insert at most.
BATCH_DOCUMENTS = 1000
BATCH_BYTES = 8 << 20
NAMESPACE_EXISTS = 48
DUPLICATE_KEY = 11000
# The freeze while the restore loads: a lease, renewed every RENEW_SECONDS.
LEASE_SECONDS = 60.0
RENEW_SECONDS = 2.0
# The freeze while the collections are swapped: long, so that no write reaches a new, empty
# records while the previous records are aside should the restore die there; recover lifts it.
SWAP_FREEZE_SECONDS = 24 * 3600.0
# A freeze renewed less recently than this (six renewals missed) belongs to a restore that
# no longer runs.
LIVE_FREEZE_SECONDS = 12.0
# How long a restore that lost the database keeps trying to leave the data in place.
RECOVERY_SECONDS = 120.0
RETRY_PAUSE_SECONDS = 1.0
RECOVER_ADVICE = (
    "once the database answers, run python -m flaskapp.backup recover (make restore "
    "BACKUP_ARGS='-e backup_recover=true'), which puts them back in place and thaws writes"
)

T = TypeVar("T")


@dataclass
class Restored:
    name: str
    database: str
    count: int
    indexes: int
    replaced: int
    created: str
    seconds: float
    load_seconds: float
    frozen_seconds: float
    swap_seconds: float
    # What an earlier restore had left and this one finished first, one clause each.
    recovered: list[str] = field(default_factory=list)
    # The previous collection when it could not be dropped after the swap.
    previous_kept: str = ""
    # When writes stay frozen because the thaw failed (ISO time), else ''.
    frozen_until: str = ""


@dataclass
class Recovered:
    done: list[str]
    thawed: bool
    count: int


@dataclass
class _Swapped:
    """What the work under the freeze did (see Restored)."""

    recovered: list[str]
    indexes: int
    load_seconds: float
    swap_seconds: float
    previous_kept: str


@dataclass
class _Progress:
    """How far a restore got: the step under way and what is known to be done."""

    stamp: str
    step: str = "load"
    replaced: int = 0
    moved_aside: bool = False
    renamed_in: bool = False

    @property
    def staging(self) -> str:
        return STAGING_PREFIX + self.stamp

    @property
    def previous(self) -> str:
        return PREVIOUS_PREFIX + self.stamp


def _first_line(exc: BaseException) -> str:
    text = str(exc).split(", full error")[0].splitlines()
    return text[0] if text else type(exc).__name__


def until_answered(deadline: float, action: Callable[[], T]) -> T:
    """``action()``, tried again while the database does not answer, until ``deadline``."""
    while True:
        try:
            return action()
        except ConnectionFailure as exc:
            if time.monotonic() >= deadline:
                raise
            log.warning(
                "the database does not answer; trying again", extra={"error": _first_line(exc)}
            )
            time.sleep(RETRY_PAUSE_SECONDS)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class FreezeLease:
    """The write freeze a restore holds: set by ``start``, renewed by a thread so that it
    outlasts the restore, held longer around the swap (``hold``), lifted by ``stop``."""

    def __init__(self, db: Database, reason: str) -> None:
        self._db = db
        self.reason = reason
        self._seconds = LEASE_SECONDS
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="freeze-lease", daemon=True)
        self.frozen: maintenance.Freeze | None = None
        self.started = 0.0
        self._set_at = 0.0
        self.frozen_seconds = 0.0

    def _set(self, seconds: float) -> None:
        """Write the freeze, ``seconds`` from now. One that had lapsed (or was never set)
        settles anew: writes may have been let through meanwhile."""
        with self._lock:
            lapsed = self.frozen is None or datetime.now(UTC) >= self.frozen.until
            self._seconds = seconds
            self.frozen = maintenance.freeze(self._db, self.reason, seconds)
            if lapsed:
                self._set_at = time.monotonic()

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            try:
                self._set(self._seconds)
            except PyMongoError as exc:
                log.warning("could not renew the write freeze", extra={"error": _first_line(exc)})

    def start(self) -> None:
        self.started = time.monotonic()
        self._set(LEASE_SECONDS)
        self._thread.start()
        assert self.frozen is not None
        log.info("writes frozen", extra={"reason": self.reason, "until": _iso(self.frozen.until)})

    def settle(self) -> float:
        """Wait until the freeze has been in force for SETTLE_SECONDS; return the wait."""
        wait = max(0.0, self._set_at + maintenance.SETTLE_SECONDS - time.monotonic())
        time.sleep(wait)
        return wait

    def hold(self, seconds: float) -> None:
        """Hold the freeze ``seconds`` from now, settled: if it lapsed or was lifted meanwhile,
        it is set again and settles anew before the caller goes on."""
        current = maintenance.current(self._db)
        if current is None or current.reason != self.reason:
            log.warning("the write freeze had lapsed; it is set again and settles anew")
            with self._lock:
                self.frozen = None
        self._set(seconds)
        self.settle()

    def stop(self, deadline: float) -> maintenance.Freeze | None:
        """Stop renewing and thaw; return the freeze left in force when thawing failed."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.frozen_seconds = time.monotonic() - self.started
        try:
            until_answered(deadline, lambda: maintenance.thaw(self._db))
        except PyMongoError as exc:
            log.error("could not thaw writes", extra={"error": _first_line(exc)})
            return self.frozen
        log.info("writes thawed", extra={"frozen_seconds": round(self.frozen_seconds, 3)})
        return None


def index_models(db: Database, backup_indexes: list[dict[str, Any]]) -> list[IndexModel]:
    """The backup's indexes, then those of ``records`` it lacks, then the service's listing
    index when neither has it: nothing the collection serves is lost by a restore."""
    listing = {
        "name": LISTING_INDEX_NAME,
        "key": [[name, direction] for name, direction in LISTING_INDEX],
        "options": {},
    }
    chosen: list[dict[str, Any]] = []
    for spec in [*backup_indexes, *index_specs(db.client, db.name), listing]:
        key = [tuple(pair) for pair in spec["key"]]
        if all(spec["name"] != c["name"] and key != [tuple(p) for p in c["key"]] for c in chosen):
            chosen.append(spec)
    return [
        IndexModel(
            [(name, direction) for name, direction in spec["key"]],
            name=spec["name"],
            **spec["options"],
        )
        for spec in chosen
    ]


def load(
    db: Database, name: str, path: Path, summary: archive.Summary, models: list[IndexModel]
) -> None:
    """Insert the backup's records into the new collection ``name``, build ``models`` on it,
    and check that it holds exactly the backup's count."""
    db.create_collection(name)
    collection = db.get_collection(name, write_concern=DURABLE)
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
    if models:
        collection.create_indexes(models)
    loaded = collection.count_documents({})
    if loaded != summary.count:
        raise archive.BackupError(
            "database",
            f"the collection {name} holds {loaded} records after loading {summary.count}",
        )


def _rename(db: Database, source: str, target: str) -> None:
    db.client.admin.command("renameCollection", f"{db.name}.{source}", to=f"{db.name}.{target}")


def _rename_in(db: Database, staging: str) -> None:
    """Give the staging collection the name ``records``. A ``records`` made meanwhile (the
    service ensures its index on first use) is dropped when empty; one with records means
    writes went on despite the freeze, which fails the swap (and the rollback keeps them)."""
    for _ in range(3):
        try:
            _rename(db, staging, COLLECTION)
            return
        except OperationFailure as exc:
            if exc.code != NAMESPACE_EXISTS:
                raise
        written = db[COLLECTION].count_documents({})
        if written:
            raise archive.BackupError(
                "changed", f"{records(written)} reached {COLLECTION} while writes were frozen"
            )
        log.info("dropping an empty records collection made while the records were aside")
        db.drop_collection(COLLECTION)
    raise archive.BackupError(
        "changed", f"a new {COLLECTION} kept appearing while the records were aside"
    )


def _renamed_in(db: Database, staging: str) -> bool:
    names = db.list_collection_names()
    return staging not in names and COLLECTION in names


def _absorb(db: Database, previous: str) -> int:
    """Move what ``records`` holds into ``previous`` and drop ``records``; return how many."""
    target = db.get_collection(previous, write_concern=DURABLE)
    moved = 0
    batch: list[dict[str, Any]] = []
    cursor = db[COLLECTION].find({})
    while True:
        document = next(cursor, None)
        if document is not None:
            batch.append(document)
        if batch and (document is None or len(batch) >= BATCH_DOCUMENTS):
            try:
                target.insert_many(batch, ordered=False)
            except BulkWriteError as exc:
                # Copied by an earlier attempt: already there.
                if any(e["code"] != DUPLICATE_KEY for e in exc.details["writeErrors"]):
                    raise
            moved += len(batch)
            batch = []
        if document is None:
            break
    db.drop_collection(COLLECTION)
    return moved


def _stamps(db: Database) -> list[str]:
    """Stamps of the restores whose collections are still there."""
    found = set()
    for name in db.list_collection_names():
        for prefix in (STAGING_PREFIX, PREVIOUS_PREFIX):
            if name.startswith(prefix):
                found.add(name.removeprefix(prefix))
    return sorted(found)


def settle(db: Database, stamp: str) -> str:
    """Finish what the restore ``stamp`` left: the previous records back in place (or, when
    its swap was done, dropped), its staging collection dropped. Returns what was done, as a
    clause ('' when nothing was left)."""
    names = set(db.list_collection_names())
    staging, previous = STAGING_PREFIX + stamp, PREVIOUS_PREFIX + stamp
    done = []
    if previous in names and (staging in names or COLLECTION not in names):
        moved = _absorb(db, previous) if COLLECTION in names else 0
        _rename(db, previous, COLLECTION)
        done.append(f"put the previous records back in {COLLECTION} from {previous}")
        if moved:
            done.append(f"with the {records(moved)} written to {COLLECTION} meanwhile")
    elif previous in names:
        db.drop_collection(previous)
        done.append(f"dropped {previous}, which that restore had replaced")
    if staging in names:
        db.drop_collection(staging)
        done.append(f"dropped the staging collection {staging}")
    return ", ".join(done)


def running_freeze(db: Database) -> maintenance.Freeze | None:
    """The freeze of a restore that is running now (renewed lately), or None."""
    freeze = maintenance.current(db)
    if freeze is None:
        return None
    age = (datetime.now(UTC) - freeze.since).total_seconds()
    return freeze if age < LIVE_FREEZE_SECONDS else None


def _refuse_if_running(db: Database) -> None:
    freeze = running_freeze(db)
    if freeze is not None:
        raise archive.BackupError(
            "busy",
            f"another restore is running ({freeze.reason}, writes frozen since "
            f"{_iso(freeze.since)}); wait until it has finished",
        )


def _refuse_if_not_empty(db: Database, summary: archive.Summary, existing: int) -> None:
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


def _swap(
    db: Database,
    path: Path,
    summary: archive.Summary,
    replace: bool,
    lease: FreezeLease,
    progress: _Progress,
    recovery_seconds: float,
) -> _Swapped:
    """Everything a restore does under its freeze."""
    recovered = [done for stamp in _stamps(db) if (done := settle(db, stamp))]
    for done in recovered:
        log.warning("finished what an earlier restore had left", extra={"done": done})
    load_started = time.monotonic()
    models = index_models(db, summary.indexes)
    load(db, progress.staging, path, summary, models)
    load_seconds = time.monotonic() - load_started
    log.info(
        "staging collection loaded",
        extra={"collection": progress.staging, "load_seconds": round(load_seconds, 3)},
    )
    progress.step = "settle"
    lease.hold(LEASE_SECONDS)
    progress.replaced = db[COLLECTION].count_documents({})
    if not replace:
        _refuse_if_not_empty(db, summary, progress.replaced)
    lease.hold(SWAP_FREEZE_SECONDS)
    swap_started = time.monotonic()
    progress.step = "move aside"
    if COLLECTION in db.list_collection_names():
        _rename(db, COLLECTION, progress.previous)
        progress.moved_aside = True
        log.info("records moved aside", extra={"collection": progress.previous})
    progress.step = "rename in"
    deadline = time.monotonic() + recovery_seconds
    try:
        _rename_in(db, progress.staging)
    except ConnectionFailure:
        # The answer may be what was lost: then the swap is done.
        if not until_answered(deadline, lambda: _renamed_in(db, progress.staging)):
            raise
        log.warning("the rename of the staging collection went through; its answer was lost")
    progress.renamed_in = True
    swap_seconds = time.monotonic() - swap_started
    log.info(
        "staging collection renamed to records", extra={"swap_seconds": round(swap_seconds, 3)}
    )
    progress.step = "drop previous"
    previous_kept = ""
    if progress.moved_aside:
        try:
            until_answered(deadline, lambda: db.drop_collection(progress.previous))
        except PyMongoError as exc:
            previous_kept = progress.previous
            log.error("could not drop the previous records", extra={"error": _first_line(exc)})
    return _Swapped(recovered, len(models), load_seconds, swap_seconds, previous_kept)


def _state(db: Database, progress: _Progress, summary: archive.Summary, deadline: float) -> str:
    """Leave the data in place after a failure; say where it is, as a clause."""
    try:
        done = until_answered(deadline, lambda: settle(db, progress.stamp))
        existing = until_answered(deadline, lambda: db[COLLECTION].count_documents({}))
    except PyMongoError:
        pass
    else:
        which = "the backup's" if progress.renamed_in else "its"
        state = f"{COLLECTION} holds {which} {records(existing)}"
        return state + (f" ({done})" if done else "")
    if progress.step in ("load", "settle"):
        return (
            f"{COLLECTION} was not touched; the staging collection {progress.staging} may be "
            "left, and the next restore or recover drops it"
        )
    previous = f"the previous {records(progress.replaced)}"
    backup = f"the backup's {records(summary.count)}"
    if progress.step == "move aside":
        return (
            f"{previous} are in {COLLECTION} or, if its rename went through, in "
            f"{progress.previous}, {backup} in {progress.staging}; {RECOVER_ADVICE}"
        )
    if progress.step == "rename in":
        return (
            f"{previous} are in {progress.previous} and {backup} in {progress.staging} or, if "
            f"its rename went through, in {COLLECTION}; {RECOVER_ADVICE}"
        )
    return (
        f"{COLLECTION} holds {backup} and {previous} are still in {progress.previous}, "
        "which the next restore or recover drops"
    )


def _failure(exc: BaseException) -> archive.BackupError:
    """A restore's failure as a BackupError (without the state of the data yet)."""
    if isinstance(exc, archive.BackupError):
        return exc
    if isinstance(exc, ConnectionFailure):
        return archive.BackupError(
            "database", f"the database did not answer ({_first_line(exc).split(',')[0]})"
        )
    if isinstance(exc, PyMongoError):
        return archive.BackupError(
            "database", f"the database failed ({type(exc).__name__}: {_first_line(exc)})"
        )
    if isinstance(exc, archive.Terminated):
        return archive.BackupError("terminated", "the restore was stopped by a signal")
    return archive.BackupError("internal", f"an unexpected {type(exc).__name__} occurred")


def restore(
    client: MongoClient,
    database: str,
    path: Path,
    replace: bool,
    recovery_seconds: float = RECOVERY_SECONDS,
) -> Restored:
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
    if not replace:
        _refuse_if_not_empty(db, summary, db[COLLECTION].count_documents({}))
    _refuse_if_running(db)
    progress = _Progress(str(time.time_ns() // 1_000_000))
    lease = FreezeLease(db, f"restore of {path.name}")
    failure: BaseException | None = None
    state = ""
    try:
        lease.start()
        swapped = _swap(db, path, summary, replace, lease, progress, recovery_seconds)
    except BaseException as exc:  # every failure, SIGTERM too, leaves the data in place
        failure = exc
        deadline = time.monotonic() + recovery_seconds
        try:
            state = _state(db, progress, summary, deadline)
        finally:
            left = lease.stop(deadline)
    else:
        left = lease.stop(time.monotonic() + recovery_seconds)
    if failure is not None:
        if left is not None:
            state += f"; writes stay frozen until {_iso(left.until)}, and recover thaws them"
        error = _failure(failure)
        raise archive.BackupError(
            error.reason, f"{error.clause}; {state}", **error.fields
        ) from failure
    return Restored(
        name=path.name,
        database=database,
        count=summary.count,
        indexes=swapped.indexes,
        replaced=progress.replaced,
        created=header["created"],
        seconds=time.monotonic() - started,
        load_seconds=swapped.load_seconds,
        frozen_seconds=lease.frozen_seconds,
        swap_seconds=swapped.swap_seconds,
        recovered=swapped.recovered,
        previous_kept=swapped.previous_kept,
        frozen_until=_iso(left.until) if left is not None else "",
    )


def recover(client: MongoClient, database: str) -> Recovered:
    """Finish what restores that did not finish left, and thaw writes they left frozen."""
    db = client[database]
    _refuse_if_running(db)
    done = [clause for stamp in _stamps(db) if (clause := settle(db, stamp))]
    thawed = maintenance.current(db) is not None
    if thawed:
        maintenance.thaw(db)
    return Recovered(done, thawed, db[COLLECTION].count_documents({}))
