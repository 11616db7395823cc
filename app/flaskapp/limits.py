"""What the workers of one service share in the temporary directory to bound their load.

Listing slots bound how many listings run at once in the pod, whichever worker serves them. A
slot is an exclusive ``flock`` on one file of a directory under the temporary directory,
named by the port so that the workers of one gunicorn share it. The kernel releases the lock
when its holder closes the file or dies, so a worker killed mid-listing leaks no slot, and a
slot dropped without being released is released when the file object is collected. Taking a
slot never waits: a request that finds none free is answered at once.

The failure table counts failed authentication attempts per source address in FAILURE_SLOTS
slots of a small memory-mapped file: its size is fixed whatever the number of sources, and
addresses that land in the same slot share a count (which can only turn a 401 into a 429).
Both live in files named by the port, so that the workers of one gunicorn share them.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import math
import mmap
import os
import struct
import tempfile
import threading
import time
from pathlib import Path

# Slots of the failure table; 16 bytes each, 64 KiB in all.
FAILURE_SLOTS = 4096
_SLOT = struct.Struct("=dQ")  # start of the source's window (monotonic seconds), failures in it


def slots_dir(port: int) -> Path:
    """Where the listing slots of the service on ``port`` live."""
    return Path(tempfile.gettempdir()) / f"flaskapp-listing-{port}"


def failures_path(port: int) -> Path:
    """The failure table of the service on ``port``."""
    return Path(tempfile.gettempdir()) / f"flaskapp-auth-failures-{port}"


class Slots:
    """``count`` slots in ``directory``, shared by every process that opens the same files."""

    def __init__(self, directory: Path, count: int) -> None:
        self.directory = directory
        self.count = count

    def path(self, index: int) -> Path:
        return self.directory / f"slot-{index}"

    def take(self) -> io.FileIO | None:
        """A free slot, held until the returned file is closed; None when none is free."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for index in range(self.count):
            fd = os.open(self.path(index), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                continue
            return io.FileIO(fd, "r+")
        return None


class FailureTable:
    """Failed attempts per source in the last ``window`` seconds, in a file-backed table that
    every process opening the same file shares; opened on first use, after gunicorn's fork."""

    def __init__(self, path: Path, limit: int, window: float) -> None:
        self.path = path
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._fd = -1
        self._map: mmap.mmap | None = None

    def _table(self) -> mmap.mmap:
        if self._map is None or self._pid != os.getpid():
            size = FAILURE_SLOTS * _SLOT.size
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._fd, self._map, self._pid = fd, mmap.mmap(fd, size), os.getpid()
        return self._map

    def record(self, source: str, now: float | None = None) -> tuple[int | None, bool]:
        """Count one failure of ``source``. Returns the seconds until it may try again when it
        is over the limit (otherwise None), and whether this failure took it over."""
        moment = time.monotonic() if now is None else now
        slot = int.from_bytes(hashlib.blake2b(source.encode(), digest_size=8).digest(), "big")
        offset = slot % FAILURE_SLOTS * _SLOT.size
        with self._lock:
            table = self._table()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                start, count = _SLOT.unpack_from(table, offset)
                if count == 0 or moment - start >= self.window or moment < start:
                    start, count = moment, 0
                # Saturates one above the first refusal, which is reported once.
                count = min(count + 1, self.limit + 2)
                _SLOT.pack_into(table, offset, start, count)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        if count <= self.limit:
            return None, False
        return max(1, math.ceil(start + self.window - moment)), count == self.limit + 1
