"""What the stored backups are worth: every checksum re-read, and the newest good backup.

``verify_all`` reads every backup whole (header, every record, count, SHA-256). ``status``
finds the newest good backup (the newest that verifies whole) and the newest good scheduled
one, and calls the backups stale when that scheduled one is older than twice the schedule's
interval, or missing while a schedule is expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import archive, catalog


@dataclass
class Checked:
    name: str
    summary: archive.Summary | None
    damage: str = ""

    def report(self) -> dict[str, object]:
        if self.summary is None:
            return {"name": self.name, "ok": False, "damaged": self.damage}
        return {
            "name": self.name,
            "ok": True,
            "created": self.summary.header["created"],
            "records": self.summary.count,
            "bytes": self.summary.size,
            "sha256": self.summary.sha256,
            "scheduled": self.summary.scheduled,
        }


def check(path: Path) -> Checked:
    try:
        return Checked(path.name, archive.verify(path))
    except archive.BackupError as exc:
        return Checked(path.name, None, exc.clause)


def verify_all(directory: Path) -> list[Checked]:
    """Every backup in the directory read whole, newest first."""
    return [check(path) for path in catalog.backups(directory)]


def _age(summary: archive.Summary, now: datetime) -> float:
    created = datetime.fromisoformat(summary.header["created"].replace("Z", "+00:00"))
    return round((now - created).total_seconds(), 3)


def status(
    directory: Path, interval_seconds: int | None, now: datetime | None = None
) -> dict[str, object]:
    """The newest good backup, the newest good scheduled one, and whether backups are stale:
    the newest good scheduled backup is older than twice ``interval_seconds``, or there is
    none (None: no schedule expected, never stale)."""
    now = now or datetime.now(UTC)
    newest: archive.Summary | None = None
    scheduled: archive.Summary | None = None
    damaged: list[str] = []
    for path in catalog.backups(directory):
        checked = check(path)
        if checked.summary is None:
            damaged.append(path.name)
            continue
        newest = newest or checked.summary
        if checked.summary.scheduled:
            scheduled = checked.summary
            break
    scheduled_age = _age(scheduled, now) if scheduled is not None else None
    stale = interval_seconds is not None and (
        scheduled_age is None or scheduled_age > 2 * interval_seconds
    )
    return {
        "backup": newest.name if newest else None,
        "created": newest.header["created"] if newest else None,
        "records": newest.count if newest else None,
        "scheduled": newest.scheduled if newest else None,
        "age_seconds": _age(newest, now) if newest else None,
        "scheduled_backup": scheduled.name if scheduled else None,
        "scheduled_age_seconds": scheduled_age,
        "max_age_seconds": interval_seconds,
        "stale": stale,
        "damaged": damaged,
    }
