"""A full database volume: FerretDB on a size-limited file system, the real service in front,
writers filling it. No write gets a 500 or hangs: each is acknowledged or answered 507
insufficient_storage with Retry-After; reads go on while it is full; writes work again once
space is freed; every acknowledged write reads back; SQLite's files are intact afterwards.

FerretDB 1.24 (SQLite) answers a write that finds no space with InternalError (code 1) and
SQLite's message "database or disk is full (13)"; a loop-mounted ext4 image gives the same
answer as the tmpfs used here. MongoDB raises OutOfDiskSpace (14031) where it checks free
space; when WiredTiger itself finds the disk full, mongod stops, and the service answers 503
database_unavailable until it is back.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from conftest import needs_ferretdb, service_env
from flaskapp.db import is_disk_full
from pymongo.errors import OperationFailure, WriteError
from support import READER, WRITER, FerretDB, Gunicorn

pytestmark = needs_ferretdb

VOLUME = "8m"
FILLER_BYTES = 2 * 1024 * 1024
RECORD = 20_000  # characters of text in each record


@dataclass
class Volume:
    path: Path
    filler: Path


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Volume]:
    """A tmpfs of VOLUME mounted for the test (as root), with a filler file to free later."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited file system needs root")
    path = tmp_path / "volume"
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={VOLUME},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        filler = path / "filler"
        filler.write_bytes(os.urandom(FILLER_BYTES))
        yield Volume(path, filler)
    finally:
        subprocess.run(["umount", str(path)], check=True)


@dataclass
class Writes:
    acknowledged: dict[str, dict] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    refusals: list[requests.Response] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, status: int) -> int:
        return self.statuses.get(status, 0)


def writer(url: str, writes: Writes, stop: threading.Event) -> None:
    while not stop.is_set():
        record = {"writer": threading.get_ident(), "text": uuid.uuid4().hex * (RECORD // 32)}
        response = requests.post(f"{url}/data", json=record, auth=WRITER, timeout=15)
        with writes.lock:
            writes.statuses[response.status_code] = writes.count(response.status_code) + 1
            if response.status_code == 201:
                writes.acknowledged[response.json()["id"]] = record
            elif response.status_code == 507:
                writes.refusals.append(response)
                if len(writes.refusals) >= 40:
                    stop.set()


def read_back(url: str, acknowledged: dict[str, dict]) -> None:
    for record_id, record in acknowledged.items():
        response = requests.get(f"{url}/data/{record_id}", auth=READER, timeout=15)
        assert response.status_code == 200, response.text
        assert response.json()["data"] == record


def integrity(data_dir: Path) -> dict[str, str]:
    results = {}
    for database in sorted(data_dir.glob("*.sqlite")):
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            results[database.name] = connection.execute("PRAGMA integrity_check").fetchone()[0]
    return results


def test_a_full_volume_is_507_then_writes_resume_and_nothing_is_lost(
    small_volume, ferretdb_bin, tmp_path
):
    data_dir = small_volume.path / "data"
    ferret = FerretDB(ferretdb_bin, data_dir, log_path=tmp_path / "ferretdb.log")
    with ferret:
        env = service_env(ferret.admin_uri, "full", MONGODB_TIMEOUT_MS="3000")
        with Gunicorn(env, tmp_path) as service:
            url = service.url
            writes, stop = Writes(), threading.Event()
            threads = [threading.Thread(target=writer, args=(url, writes, stop)) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=300)
            assert not any(thread.is_alive() for thread in threads), "a write hung"
            assert set(writes.statuses) <= {201, 507}, writes.statuses
            assert writes.count(201) > 10
            for refused in writes.refusals:
                assert refused.headers["Retry-After"] == "30"
                assert refused.json()["error"]["code"] == "insufficient_storage"

            # Full: reads go on, and so do the probes.
            read_back(url, writes.acknowledged)
            listed = requests.get(f"{url}/data?limit=5", auth=READER, timeout=15)
            assert listed.status_code == 200, listed.text
            assert requests.get(f"{url}/readyz", timeout=15).status_code == 200
            assert (
                requests.post(f"{url}/data", json={"x": 1}, auth=WRITER, timeout=15).status_code
                == 507
            )

            # Space freed: writes are acknowledged again.
            small_volume.filler.unlink()
            deadline = time.monotonic() + 30
            while True:
                again = requests.post(
                    f"{url}/data", json={"after": "freed"}, auth=WRITER, timeout=15
                )
                assert again.status_code in (201, 507), again.text
                if again.status_code == 201 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert again.status_code == 201
            writes.acknowledged[again.json()["id"]] = {"after": "freed"}
            read_back(url, writes.acknowledged)
            logs = service.logs()
    assert "database volume full" in logs
    assert "Traceback" not in logs
    assert integrity(data_dir) == {"admin.sqlite": "ok", "full.sqlite": "ok"}
    print(f"writes: {writes.statuses}, acknowledged {len(writes.acknowledged)}")


@pytest.mark.parametrize(
    ("error", "full"),
    [
        (OperationFailure("[db.go:167] database or disk is full (13)", 1), True),
        (WriteError("No space left", 14031), True),
        (OperationFailure("Out of disk space", 14031), True),
        (OperationFailure("some other internal error", 1), False),
        (WriteError("nested arrays are not supported", 2), False),
    ],
)
def test_disk_full_answers_of_either_server_are_recognised(error, full):
    assert is_disk_full(error) is full
