"""The backup directory: names by time, the latest backup, listing and stale partial files.

A backup is written as a hidden partial file and appears under its final name,
``records-<UTC time>.jsonl``, only once complete (a hard link, which never replaces an existing
file). Names sort in time order, so the newest backup is the greatest name.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from .archive import BackupError

PREFIX = "records-"
SUFFIX = ".jsonl"
PARTIAL_PREFIX = ".partial-"
# records-20261126T100504.123Z.jsonl
NAME = re.compile(r"^records-(\d{8}T\d{6}\.\d{3}Z)\.jsonl$")
# A partial file nobody has written to for this long belongs to a dump that died.
STALE_PARTIAL_SECONDS = 3600


def stamp(moment: datetime) -> str:
    """UTC time to milliseconds, as in backup names: 20261126T100504.123Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y%m%dT%H%M%S.") + f"{moment.microsecond // 1000:03d}Z"


def name_for(moment: datetime) -> str:
    return f"{PREFIX}{stamp(moment)}{SUFFIX}"


def partial_for(name: str) -> str:
    return PARTIAL_PREFIX + name


def check_directory(directory: Path) -> None:
    if not directory.is_dir():
        raise BackupError("usage", f"the backup directory {directory} does not exist")


def backups(directory: Path) -> list[Path]:
    """Complete backups named by time, newest first."""
    check_directory(directory)
    found = [path for path in directory.iterdir() if NAME.match(path.name) and path.is_file()]
    return sorted(found, key=lambda path: path.name, reverse=True)


def resolve(directory: Path, name: str) -> Path:
    """``latest`` or the name of a file in the directory (no path, not hidden)."""
    if name == "latest":
        found = backups(directory)
        if not found:
            raise BackupError("not_found", f"there is no backup in {directory}")
        return found[0]
    check_directory(directory)
    if not name or "/" in name or name.startswith("."):
        raise BackupError(
            "usage", f"{name!r} is not a backup name (a file name in {directory}, or latest)"
        )
    path = directory / name
    if not path.is_file():
        raise BackupError("not_found", f"there is no backup {name} in {directory}")
    return path


def publish(partial: Path, final: Path) -> None:
    """Give a complete partial file its final name, never replacing an existing file."""
    try:
        os.link(partial, final)
    except FileExistsError:
        raise BackupError("usage", f"a backup named {final.name} already exists") from None
    partial.unlink()
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def stale_partials(directory: Path) -> list[Path]:
    """Partial files nobody has written to for STALE_PARTIAL_SECONDS: dumps that died."""
    now = time.time()
    return [
        path
        for path in directory.iterdir()
        if path.name.startswith(PARTIAL_PREFIX)
        and now - path.stat().st_mtime > STALE_PARTIAL_SECONDS
    ]
