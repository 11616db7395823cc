"""Retention: which backups a prune deletes, and room on the volume for the next backup.

The rules, applied by ``prune`` and by ``dump --keep`` once it has written (the CronJob):

1. The newest ``keep`` complete backups stay. A file that is not a complete backup (a damaged
   header or trailer) never counts toward them, and goes only once it is older than the
   oldest kept one.
2. The shrink guard: when the newest backup holds fewer than ``min_ratio`` of the records of
   the backup before it, nothing is deleted. A wipe (a bug, a client deleting everything)
   looks like this.
3. The last good one: a backup is deleted only when a kept backup holds at least
   ``min_ratio`` of its records; otherwise nothing is deleted. After a wipe, the newest backup
   from before it therefore stays however many runs follow, until a prune with a lower ratio.

A refusal deletes nothing and says why in one clause; ``min_ratio`` 0 turns both guards off.

Room: before a dump with ``keep``, when the file system's free space would not hold the next
backup (estimated from the newest backup's size, scaled by how much the collection grew or
shrank since), the backups beyond the newest ``keep - 1`` (at least one stays) are deleted
first, under rule 3; when even that would not make room, nothing is deleted and the dump fails
before writing anything.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from . import archive, catalog
from .text import count, mib, records

# Bytes of backup per byte the server reports for the collection (collStats size), for a first
# backup, when no earlier one gives the ratio. Measured: 0.6 on FerretDB 1.24 (SQLite stores
# more than the BSON), about 1.5 on MongoDB (canonical Extended JSON against BSON); 3 is safe.
FIRST_EXPANSION = 3.0
# What the estimate adds to the scaled size: a tenth, and a MiB for header, trailer and blocks.
MARGIN_RATIO = 0.1
MARGIN_BYTES = 1 << 20


@dataclass(frozen=True)
class Stored:
    """A backup file in the directory: its header and trailer, or why it is not complete."""

    path: Path
    size: int
    summary: archive.Summary | None
    damage: str = ""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def count(self) -> int:
        return self.summary.count if self.summary is not None else 0


def stored(directory: Path) -> list[Stored]:
    """Every backup file, newest first, with its header and trailer read (not its records)."""
    found = []
    for path in catalog.backups(directory):
        try:
            summary = archive.peek(path)
        except archive.BackupError as exc:
            found.append(Stored(path, path.stat().st_size, None, exc.clause))
        else:
            found.append(Stored(path, summary.size, summary))
    return found


@dataclass(frozen=True)
class Plan:
    """What a prune keeps and deletes, or why it deletes nothing (``refusal``)."""

    kept: list[Stored]
    deleted: list[Stored]
    refusal: str = ""


def check_ratio(min_ratio: float) -> None:
    if not 0 <= min_ratio <= 1:
        raise archive.BackupError(
            "usage", f"the minimum ratio must be from 0 to 1, got {min_ratio:g}"
        )


def plan(found: list[Stored], keep: int, min_ratio: float, guard_newest: bool = True) -> Plan:
    """The rules above, applied to ``found`` (newest first)."""
    if keep < 1:
        raise archive.BackupError("usage", f"keep must be at least 1, got {keep}")
    check_ratio(min_ratio)
    good = [entry for entry in found if entry.summary is not None]
    kept = good[:keep]
    if not kept:
        return Plan(list(found), [])
    oldest_kept = kept[-1].name
    deleted = [entry for entry in found if entry not in kept and entry.name < oldest_kept]
    refusal = ""
    if guard_newest and len(good) > 1 and good[0].count < min_ratio * good[1].count:
        refusal = (
            f"{good[0].name}, the newest backup, holds {records(good[0].count)}, fewer than "
            f"{min_ratio:g} of the {good[1].count} of {good[1].name}, the backup before it"
        )
    largest = max(entry.count for entry in kept)
    for entry in deleted:
        if refusal:
            break
        if entry.summary is not None and largest < min_ratio * entry.count:
            refusal = (
                f"deleting {entry.name} ({records(entry.count)}) would leave no backup with "
                f"{min_ratio:g} of its records (the backups kept hold {records(largest)} at most)"
            )
    if refusal:
        return Plan(list(found), [], refusal)
    return Plan(kept, deleted)


def apply(chosen: Plan, directory: Path) -> list[Path]:
    """Delete what ``chosen`` deletes, and stale partial files; return what went."""
    if chosen.refusal:
        return []
    paths = [entry.path for entry in chosen.deleted] + catalog.stale_partials(directory)
    for path in paths:
        path.unlink(missing_ok=True)
    return paths


def estimate(found: list[Stored], collection_bytes: int) -> int:
    """Bytes the next backup will take, about, with a margin."""
    newest = next((entry for entry in found if entry.summary is not None), None)
    if collection_bytes <= 0:
        body = 0.0
    elif newest is not None and newest.summary is not None and newest.summary.collection_bytes:
        body = newest.size * collection_bytes / newest.summary.collection_bytes
    else:
        body = collection_bytes * FIRST_EXPANSION
    return math.ceil(body * (1 + MARGIN_RATIO)) + MARGIN_BYTES


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on the directory's file system."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


@dataclass(frozen=True)
class Room:
    """The space check before a dump: what it needs, what was free, what was deleted for it."""

    needed: int
    free: int
    deleted: list[Path]


def make_room(directory: Path, collection_bytes: int, keep: int | None, min_ratio: float) -> Room:
    """Ensure room for the next backup, deleting old ones beyond ``keep - 1`` if that is
    enough; raise BackupError (no_space), deleting nothing, when it is not."""
    found = stored(directory)
    needed = estimate(found, collection_bytes)
    free = free_bytes(directory)
    if free >= needed:
        return Room(needed, free, [])
    short = f"the next backup needs about {mib(needed)} and {directory} has {mib(free)} free"
    advice = "a larger backup volume (backup_storage_size) or fewer backups (backup_keep)"
    if keep is None:
        raise archive.BackupError(
            "no_space",
            f"{short}: {mib(needed - free)} more is needed (prune --keep N deletes old "
            f"backups; or {advice})",
            needed=needed,
            free=free,
        )
    room = plan(found, max(keep - 1, 1), min_ratio, guard_newest=False)
    if room.refusal:
        raise archive.BackupError(
            "no_space",
            f"{short}, and no backup may be deleted to make room: {room.refusal}",
            needed=needed,
            free=free,
        )
    freed = sum(entry.size for entry in room.deleted)
    if free + freed < needed:
        beyond = count(len(room.deleted), "backup", "backups")
        raise archive.BackupError(
            "no_space",
            f"{short}, {mib(free + freed)} once the {beyond} beyond the newest "
            f"{max(keep - 1, 1)} are deleted: {mib(needed - free - freed)} more is needed "
            f"({advice})",
            needed=needed,
            free=free,
        )
    return Room(needed, free, apply(room, directory))
