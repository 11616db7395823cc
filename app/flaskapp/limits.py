"""Slots that bound how many listings run at once in the pod, whichever worker serves them.

A slot is an exclusive ``flock`` on one file of a directory under the temporary directory,
named by the port so that the workers of one gunicorn share it. The kernel releases the lock
when its holder closes the file or dies, so a worker killed mid-listing leaks no slot. Taking
a slot never waits: a request that finds none free is answered at once.
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def slots_dir(port: int) -> Path:
    """Where the listing slots of the service on ``port`` live."""
    return Path(tempfile.gettempdir()) / f"flaskapp-listing-{port}"


class Slots:
    """``count`` slots in ``directory``, shared by every process that opens the same files."""

    def __init__(self, directory: Path, count: int) -> None:
        self.directory = directory
        self.count = count

    def path(self, index: int) -> Path:
        return self.directory / f"slot-{index}"

    @contextmanager
    def hold(self) -> Iterator[bool]:
        """Hold a free slot for the duration of the block; yields False when none is free."""
        fd = self._take()
        try:
            yield fd is not None
        finally:
            if fd is not None:
                os.close(fd)

    def _take(self) -> int | None:
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
            return fd
        return None
