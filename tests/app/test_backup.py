"""python -m flaskapp.backup against the real server, as the application user.

Each test runs the tool as a subprocess with the credentials in its environment, the way the
Kubernetes Jobs run it, and checks the database directly. The restore's failure points are
reached with real faults: a FerretDB of the test's own is stopped, or a connection killed, at
the exact command, by a proxy in front of it that reads the MongoDB wire protocol.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bson
import pytest
import requests
from bson import Int64, ObjectId
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from conftest import Mongo, needs_ferretdb, service_env
from flaskapp import maintenance
from flaskapp.backup import archive
from flaskapp.backup.restore import LIVE_FREEZE_SECONDS
from measure import run_measured
from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.errors import OperationFailure
from support import APP_DIR, FerretDB, Gunicorn, free_port, mongo_uri

NOT_IMPLEMENTED = 238
RAW = CodecOptions(document_class=RawBSONDocument, tz_aware=True)


@dataclass
class AppUser:
    """A database with its own least-privilege user, as the deployment has."""

    database: str
    user: str
    password: str
    host: str
    port: int

    def env(self, backups: Path, **extra: str) -> dict[str, str]:
        return {
            "MONGODB_HOST": self.host,
            "MONGODB_PORT": str(self.port),
            "MONGODB_USERNAME": self.user,
            "MONGODB_PASSWORD": self.password,
            "MONGODB_DATABASE": self.database,
            "MONGODB_TIMEOUT_MS": "5000",
            "BACKUP_DIR": str(backups),
            **extra,
        }


@contextlib.contextmanager
def application_user(mongo) -> Iterator[AppUser]:
    database = f"backup_{uuid.uuid4().hex[:8]}"
    user = f"app_{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    host = "127.0.0.1" if mongo.host in ("localhost", "::1") else mongo.host
    with mongo.client() as admin:
        try:
            admin[database].command(
                "createUser", user, pwd=password, roles=[{"role": "readWrite", "db": database}]
            )
        except OperationFailure as exc:
            if exc.code != NOT_IMPLEMENTED:
                raise
            admin[database].command("createUser", user, pwd=password, roles=[])
        try:
            yield AppUser(database, user, password, host, mongo.port)
        finally:
            with contextlib.suppress(OperationFailure):
                admin[database].command("dropUser", user)
            admin.drop_database(database)


@pytest.fixture
def app_user(mongo) -> Iterator[AppUser]:
    with application_user(mongo) as user:
        yield user


def run_backup(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "BACKUP_"))}
    return subprocess.run(
        [sys.executable, "-m", "flaskapp.backup", *args],
        env={**clean, "PYTHONPATH": str(APP_DIR), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def log_lines(result: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in result.stderr.splitlines() if line.strip()]


def outcome(result: subprocess.CompletedProcess) -> dict:
    """The log line that says what the command did."""
    return [line for line in log_lines(result) if "result" in line][-1]


def dump(env: dict[str, str], *extra: str) -> dict:
    result = run_backup(env, "dump", *extra)
    assert result.returncode == 0, result.stderr
    return outcome(result)


def state(client: MongoClient, database: str) -> tuple:
    """Every document of the database, byte for byte, and every index (the write freeze's
    collection aside: checked by settled())."""
    db = client[database]
    collections = {}
    for name in sorted(set(db.list_collection_names()) - {maintenance.COLLECTION}):
        collection = db.get_collection(name, codec_options=RAW)
        documents = sorted(bytes(doc.raw) for doc in collection.find())
        indexes = sorted((i["name"], tuple(i["key"].items())) for i in collection.list_indexes())
        collections[name] = (documents, indexes)
    return tuple(collections.items())


def settled(client: MongoClient, database: str) -> list[str]:
    """The collections of the database (records, and the freeze's, empty), once no write
    freeze is in force: what every restore leaves behind."""
    db = client[database]
    assert maintenance.current(db) is None, "writes are still frozen"
    assert db[maintenance.COLLECTION].count_documents({}) == 0
    return sorted(set(db.list_collection_names()) - {maintenance.COLLECTION})


def now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def nested(depth: int) -> dict:
    value: dict = {"leaf": "bottom", "n": depth}
    for level in range(depth):
        value = {"level": level, "child": value, "list": [level, {"k": level}]}
    return value


def sample_records(count: int) -> list[dict]:
    """Records as the service stores them, with large, nested and typed values."""
    records = []
    base = now_ms() - timedelta(minutes=5)
    for i in range(count):
        data: dict = {"name": f"sensor-{i}", "value": i * 0.5, "n": i, "ok": i % 2 == 0}
        if i % 50 == 0:
            data["large"] = "x" * 60_000
        if i % 40 == 1:
            data["nested"] = nested(30)
        if i % 30 == 2:
            data.update(big=Int64(2**40 + i), neg=-(2**62), zero=-0.0, none=None, text="héllo ☃ 😀")
        records.append(
            {"_id": ObjectId(), "created_at": base + timedelta(milliseconds=i), "data": data}
        )
    return records


def seed(mongo, database: str, records: list[dict]) -> None:
    with mongo.client() as client:
        collection = client[database]["records"]
        collection.create_index(
            [("created_at", DESCENDING), ("_id", DESCENDING)], name="created_at_-1__id_-1"
        )
        collection.create_index([("data.name", ASCENDING)], name="by_name")
        for start in range(0, len(records), 1000):
            collection.insert_many(records[start : start + 1000])


@pytest.fixture
def backups(tmp_path: Path) -> Path:
    path = tmp_path / "backups"
    path.mkdir()
    return path


def test_round_trip_restores_the_same_ids_content_and_indexes(mongo, app_user, backups):
    records = sample_records(300)
    seed(mongo, app_user.database, records)
    with mongo.client() as client:
        before = state(client, app_user.database)

    written = dump(app_user.env(backups))
    assert written["records"] == 300
    assert written["indexes"] == 2
    assert written["file"].startswith("records-")
    assert (backups / written["file"]).is_file()

    with mongo.client() as client:
        client[app_user.database]["records"].delete_many({})
    result = run_backup(app_user.env(backups), "restore", "latest")
    assert result.returncode == 0, result.stderr
    restored = outcome(result)
    assert restored["records"] == 300
    assert restored["message"].startswith(
        f"Restored 300 records and 2 indexes from {written['file']}"
    )

    with mongo.client() as client:
        assert state(client, app_user.database) == before
        assert settled(client, app_user.database) == ["records"]


def test_credentials_reach_no_argument_log_line_or_backup(mongo, app_user, backups):
    seed(mongo, app_user.database, sample_records(20))
    env = app_user.env(backups)
    dumped = run_backup(env, "dump")
    listed = run_backup(env, "list")
    assert dumped.returncode == 0
    assert listed.returncode == 0
    (backup,) = backups.iterdir()
    text = backup.read_text()
    header = json.loads(text.splitlines()[0])
    assert set(header) == {
        "format", "version", "database", "collection", "created", "engine", "indexes",
        "scheduled", "collection_bytes",
    }  # fmt: skip
    assert header["scheduled"] is False
    assert header["collection_bytes"] > 0
    for secret in (app_user.password, app_user.user):
        for output in (dumped.stdout, dumped.stderr, listed.stdout, listed.stderr, text):
            assert secret not in output
    assert all(line["logger"] == "flaskapp.backup" for line in log_lines(dumped))


@pytest.fixture(scope="module")
def reference_backup(mongo, tmp_path_factory) -> Path:
    """A backup of 120 records, made once for the tests that damage copies of it."""
    directory = tmp_path_factory.mktemp("reference")
    with application_user(mongo) as user:
        seed(mongo, user.database, sample_records(120))
        return directory / dump(user.env(directory))["file"]


@pytest.fixture
def good_backup(mongo, app_user, reference_backup, tmp_path):
    """A copy of the reference backup, and other records in the collection."""
    directory = tmp_path / "good"
    directory.mkdir()
    path = directory / reference_backup.name
    shutil.copy(reference_backup, path)
    with mongo.client() as client:
        client[app_user.database]["records"].insert_many(sample_records(7))
        before = state(client, app_user.database)
    return path, before


def refuse(
    mongo, app_user, path: Path, content: bytes, before: tuple, expected: str, verify: bool = True
) -> None:
    """A damaged copy of the backup is refused, even with --replace, and nothing changes;
    verify refuses it too."""
    damaged_dir = path.parent.parent / f"damaged-{uuid.uuid4().hex[:8]}"
    damaged_dir.mkdir()
    (damaged_dir / path.name).write_bytes(content)
    env = app_user.env(damaged_dir)
    result = run_backup(env, "restore", path.name, "--replace")
    assert result.returncode == 1, result.stderr
    refused = outcome(result)
    assert (refused["level"], refused["result"], refused["reason"]) == (
        "ERROR",
        "refused",
        "damaged",
    )
    assert refused["message"].startswith(f"Nothing was restored: {path.name} is {expected}")
    assert refused["message"].endswith(".")
    assert "\n" not in refused["message"]
    assert not any(line["message"] == "backup verified" for line in log_lines(result))
    if verify:
        verified = run_backup(env, "verify", path.name)
        assert verified.returncode == 1
        assert outcome(verified)["message"].startswith(f"Verification failed: {path.name} is")
    with mongo.client() as client:
        assert state(client, app_user.database) == before


def test_truncated_backups_are_refused_and_change_nothing(mongo, app_user, good_backup):
    path, before = good_backup
    content = path.read_bytes()
    lines = content.splitlines(keepends=True)
    header_end = len(lines[0])
    last_record_end = len(content) - len(lines[-1])
    offsets = {
        "empty": 0,
        "inside the header": header_end // 2,
        "after the header": header_end,
        "inside a record": header_end + len(lines[1]) + 10,
        "after a record, before the trailer": last_record_end,
        "inside the trailer": len(content) - 20,
        "without the last newline": len(content) - 1,
    }

    def check(where: str, offset: int) -> None:
        expected = "empty" if offset == 0 else "truncated"
        try:
            refuse(mongo, app_user, path, content[:offset], before, expected, verify=offset == 0)
        except AssertionError as exc:
            raise AssertionError(f"truncated {where} (byte {offset}): {exc}") from exc

    # Each restore is its own process and must change nothing, so they may run side by side.
    with ThreadPoolExecutor(max_workers=4) as pool:
        for done in [pool.submit(check, where, offset) for where, offset in offsets.items()]:
            done.result()


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("a digit of a record", "corrupted (its content does not match the SHA-256"),
        ("a quote of a record", "corrupted (line"),
        ("the header's database", "corrupted (its content does not match the SHA-256"),
        ("the trailer's checksum", "corrupted (its content does not match the SHA-256"),
    ],
)
def test_a_flipped_byte_is_refused_and_changes_nothing(
    mongo, app_user, good_backup, where, expected
):
    path, before = good_backup
    content = bytearray(path.read_bytes())
    lines = bytes(content).splitlines(keepends=True)
    record_start = len(lines[0]) + len(lines[1])
    record = lines[2]
    if where == "a digit of a record":
        offset = record_start + record.index(b'"$numberInt":"') + len(b'"$numberInt":"')
    elif where == "a quote of a record":
        offset = record_start + record.index(b'"data"')
    elif where == "the header's database":
        offset = lines[0].index(b'"database":"') + len(b'"database":"')
    else:
        offset = len(content) - 5
    content[offset] ^= 0x01
    refuse(
        mongo, app_user, path, bytes(content), before, expected, verify=offset == len(content) - 5
    )


def test_restore_onto_a_non_empty_collection_needs_replace(mongo, app_user, good_backup):
    path, before = good_backup
    env = app_user.env(path.parent)
    refused = run_backup(env, "restore", path.name)
    assert refused.returncode == 1
    line = outcome(refused)
    assert (line["result"], line["reason"]) == ("refused", "not_empty")
    assert (line["file"], line["existing"], line["records"]) == (path.name, 7, 120)
    assert line["message"] == (
        f"Nothing was restored: the records collection of database '{app_user.database}' holds "
        f"7 records, and restore does not write over them unless told to (--replace replaces "
        f"them with the 120 records of {path.name})."
    )
    with mongo.client() as client:
        assert state(client, app_user.database) == before

    replaced = run_backup(env, "restore", path.name, "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert outcome(replaced)["replaced"] == 7
    with mongo.client() as client:
        records = client[app_user.database]["records"]
        assert records.count_documents({}) == 120
        names = {doc["data"]["name"] for doc in records.find({}, {"data.name": 1})}
        assert names == {f"sensor-{i}" for i in range(120)}
        assert settled(client, app_user.database) == ["records"]


def peak_rss_mib(env: dict[str, str], *args: str) -> float:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "BACKUP_"))}
    measured = run_measured(
        [sys.executable, "-m", "flaskapp.backup", *args],
        {**clean, "PYTHONPATH": str(APP_DIR), **env},
    )
    assert measured.returncode == 0, measured.stderr
    return measured.peak_mib


def test_memory_stays_flat_while_dumping_many_records(mongo, app_user, tmp_path):
    """Ten times the data (about 18 MiB more) costs the dump a few MiB at most."""
    with mongo.client() as client:
        records = client[app_user.database]["records"]
        peaks = []
        for total in (1000, 10000):
            batch = [
                {"created_at": now_ms(), "data": {"n": i, "text": "y" * 2000}}
                for i in range(records.count_documents({}), total)
            ]
            for start in range(0, len(batch), 2000):
                records.insert_many(batch[start : start + 2000])
            directory = tmp_path / f"dump-{total}"
            directory.mkdir()
            peaks.append(peak_rss_mib(app_user.env(directory), "dump"))
            (backup,) = directory.iterdir()
            assert backup.stat().st_size > total * 2000
    small, large = peaks
    assert large - small < 8, f"peak RSS {small:.1f} MiB at 1000 records, {large:.1f} at 10000"


def test_large_records_stream_in_batches_the_server_accepts(mongo, app_user, backups):
    """850 records of 60 KB: one batch of them would exceed FerretDB's 48 MB message limit."""
    with mongo.client() as client:
        records = client[app_user.database]["records"]
        for start in range(0, 850, 170):
            records.insert_many(
                [
                    {"created_at": now_ms(), "data": {"n": n, "text": "L" * 60_000}}
                    for n in range(start, start + 170)
                ]
            )
    written = dump(app_user.env(backups))
    assert written["records"] == 850
    verified = run_backup(app_user.env(backups), "verify", written["file"])
    assert verified.returncode == 0, verified.stderr


def test_a_dump_during_writes_and_deletes_is_complete_up_to_its_start(mongo, app_user, backups):
    seeded = sample_records(3000)
    for record in seeded:
        record["data"].pop("large", None)
    seed(mongo, app_user.database, seeded)
    acknowledged: list[tuple[float, ObjectId, datetime]] = []
    deleted: set[ObjectId] = set()
    stop = threading.Event()

    def write() -> None:
        with mongo.client() as client:
            records = client[app_user.database]["records"]
            while not stop.is_set():
                document = {"created_at": now_ms(), "data": {"writer": True}}
                records.insert_one(document)
                acknowledged.append((time.monotonic(), document["_id"], document["created_at"]))

    def delete() -> None:
        with mongo.client() as client:
            records = client[app_user.database]["records"]
            for record in seeded[::10]:
                if stop.is_set():
                    return
                deleted.add(record["_id"])
                records.delete_one({"_id": record["_id"]})
                time.sleep(0.002)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while len(acknowledged) < 50:
            time.sleep(0.01)
        deleter = threading.Thread(target=delete)
        started = time.monotonic()
        deleter.start()
        result = run_backup(app_user.env(backups), "dump")
        ended = time.monotonic()
    finally:
        stop.set()
        writer.join()
    deleter.join()
    assert result.returncode == 0, result.stderr
    (backup,) = backups.iterdir()
    lines = backup.read_text().splitlines()
    cut = datetime.fromisoformat(json.loads(lines[0])["created"])
    dumped = [json.loads(line) for line in lines[1:-1]]
    ids = [ObjectId(doc["_id"]["$oid"]) for doc in dumped]
    assert len(ids) == len(set(ids)), "a record appears twice"

    before_start = {oid for at, oid, _ in acknowledged if at < started}
    during = [(oid, created) for at, oid, created in acknowledged if started <= at <= ended]
    expected = ({r["_id"] for r in seeded} - deleted) | before_start
    assert expected <= set(ids), f"{len(expected - set(ids))} records of before the start missing"
    assert during, "no write happened while the dump ran"
    after_cut = {oid for oid, created in during if created > cut}
    assert not after_cut & set(ids), "records created after the dump's start are in it"
    known = {r["_id"] for r in seeded} | {oid for _, oid, _ in acknowledged}
    assert set(ids) <= known
    assert outcome(result)["records"] == len(ids)


def test_prune_keeps_the_newest_backups_and_list_shows_them_newest_first(mongo, app_user, backups):
    seed(mongo, app_user.database, sample_records(5))
    written = backups / dump(app_user.env(backups))["file"]
    stamps = ["20260101T000000.000Z", "20260301T000000.000Z", "20260201T000000.000Z"]
    for stamp in stamps:
        shutil.copy(written, backups / f"records-{stamp}.jsonl")
    stale = backups / f".partial-records-{stamps[0]}.jsonl"
    fresh = backups / f".partial-records-{stamps[1]}.jsonl"
    stale.write_text("{}")
    fresh.write_text("{}")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))

    listed = run_backup(app_user.env(backups), "list")
    assert listed.returncode == 0, listed.stderr
    names = [json.loads(line)["name"] for line in listed.stdout.splitlines()]
    assert names == [written.name] + [f"records-{s}.jsonl" for s in sorted(stamps, reverse=True)]

    pruned = run_backup(app_user.env(backups), "prune", "--keep", "2")
    assert pruned.returncode == 0, pruned.stderr
    remaining = sorted(path.name for path in backups.iterdir())
    assert remaining == sorted([fresh.name, written.name, "records-20260301T000000.000Z.jsonl"])

    refused = run_backup(app_user.env(backups), "prune", "--keep", "0")
    assert refused.returncode == 2
    assert outcome(refused)["message"] == "Nothing was pruned: keep must be at least 1, got 0."


def test_dump_with_keep_prunes_after_writing(mongo, app_user, backups):
    seed(mongo, app_user.database, sample_records(5))
    first = backups / dump(app_user.env(backups))["file"]
    for stamp in ("20250101T000000.000Z", "20250102T000000.000Z"):
        shutil.copy(first, backups / f"records-{stamp}.jsonl")
    first.unlink()
    written = dump(app_user.env(backups), "--keep", "2")
    assert written["pruned"] == ["records-20250101T000000.000Z.jsonl"]
    assert sorted(p.name for p in backups.iterdir()) == sorted(
        [written["file"], "records-20250102T000000.000Z.jsonl"]
    )
    assert written["message"].endswith("; kept 2 backups (at most 2), deleted 1.")


def test_restore_names_a_missing_backup_and_an_unreachable_database(app_user, backups):
    missing = run_backup(app_user.env(backups), "restore", "latest")
    assert missing.returncode == 1
    assert outcome(missing)["message"] == f"Nothing was restored: there is no backup in {backups}."

    port = free_port()
    env = {
        "MONGODB_URI": mongo_uri("127.0.0.1", port, "u", "secret-password", "admin"),
        "MONGODB_TIMEOUT_MS": "300",
        "BACKUP_DIR": str(backups),
    }
    down = run_backup(env, "dump")
    assert down.returncode == 1
    line = outcome(down)
    assert (line["result"], line["reason"]) == ("failed", "database")
    assert line["message"].startswith("No backup was written: the database did not answer")
    assert "secret-password" not in down.stderr
    assert list(backups.iterdir()) == []


def test_configuration_errors_stop_with_one_line_and_status_2(backups):
    result = run_backup({"MONGODB_PORT": "abc", "BACKUP_DIR": str(backups)}, "dump")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "flaskapp.backup: configuration error: MONGODB_PORT must be an integer, got 'abc'"
    ]


# --- Faults at exact commands: a proxy that reads the wire protocol -------------------------

OP_MSG = 2013


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _frame(sock: socket.socket) -> bytes | None:
    """One whole wire-protocol message, or None once the connection is gone."""
    head = _recv_exactly(sock, 4)
    if head is None:
        return None
    rest = _recv_exactly(sock, int.from_bytes(head, "little") - 4)
    return None if rest is None else head + rest


def command_of(frame: bytes) -> dict:
    """The command document of an OP_MSG (its section of kind 0), else {}."""
    if int.from_bytes(frame[12:16], "little") != OP_MSG:
        return {}
    offset = 20
    while offset < len(frame):
        kind = frame[offset]
        size = int.from_bytes(frame[offset + 1 : offset + 5], "little")
        if kind == 0:
            return bson.decode(frame[offset + 1 : offset + 1 + size])
        offset += 1 + size
    return {}


@dataclass
class _Link:
    client: socket.socket
    server: socket.socket
    drop_reply_to: int | None = None
    closed: bool = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class WireProxy:
    """A TCP proxy in front of the database that reads every command, so that a test can
    fault exactly one: ``kill`` closes the connection instead of sending it, ``hold`` keeps
    it until ``release`` is set (the test stops the server meanwhile), ``kill_reply`` sends
    it and closes the connection instead of passing its answer on. ``hit`` is set when the
    fault fires."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._fault: tuple[Callable[[dict], bool], str] | None = None
        self._links: list[_Link] = []
        self.hit = threading.Event()
        self.release = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def fault(self, matches: Callable[[dict], bool], action: str) -> None:
        with self._lock:
            self._fault = (matches, action)

    def close(self) -> None:
        self.release.set()
        self._listener.close()
        for link in self._links:
            link.close()

    def _take(self, command: dict) -> str | None:
        with self._lock:
            if self._fault is None or not self._fault[0](command):
                return None
            action = self._fault[1]
            self._fault = None
        self.hit.set()
        return action

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            link = _Link(client, server)
            self._links.append(link)
            threading.Thread(target=self._forward, args=(link,), daemon=True).start()
            threading.Thread(target=self._backward, args=(link,), daemon=True).start()

    def _forward(self, link: _Link) -> None:
        while (frame := _frame(link.client)) is not None:
            action = self._take(command_of(frame))
            if action == "kill":
                break
            if action == "hold":
                self.release.wait(120)
            if action == "kill_reply":
                link.drop_reply_to = int.from_bytes(frame[4:8], "little")
            try:
                link.server.sendall(frame)
            except OSError:
                break
        link.close()

    def _backward(self, link: _Link) -> None:
        while (frame := _frame(link.server)) is not None:
            if int.from_bytes(frame[8:12], "little") == link.drop_reply_to:
                break
            try:
                link.client.sendall(frame)
            except OSError:
                break
        link.close()


@dataclass
class Faulty:
    """A FerretDB of the test's own, a WireProxy in front of it, and an application user
    whose tool connects through the proxy."""

    server: FerretDB
    proxy: WireProxy
    admin: Mongo
    user: AppUser

    def env(self, backups: Path) -> dict[str, str]:
        """The tool's environment: through the proxy, giving up on a dead server in 1.5 s."""
        return self.user.env(backups, MONGODB_TIMEOUT_MS="1500")

    def stop_at_fault(self) -> None:
        """Wait for the fault to fire, then stop the server as a crash would (SIGKILL) and let
        the command go."""
        assert self.proxy.hit.wait(120), "the restore never sent the faulted command"
        self.server.stop(signal.SIGKILL)
        self.proxy.release.set()


@pytest.fixture
def faulty(ferretdb_bin, tmp_path) -> Iterator[Faulty]:
    server = FerretDB(ferretdb_bin, tmp_path / "faulty")
    server.start()
    proxy = WireProxy(server.port)
    admin = Mongo(server.admin_uri, "127.0.0.1", server.port, server)
    try:
        with application_user(admin) as user:
            user.port = proxy.port
            try:
                yield Faulty(server, proxy, admin, user)
            finally:
                if server.proc is None:
                    server.start()
    finally:
        proxy.close()
        server.stop()


class Running:
    """The tool running in the background; its log lines are read as they come."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "BACKUP_"))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flaskapp.backup", *args],
            env={**clean, "PYTHONPATH": str(APP_DIR), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            entry = json.loads(line) if line.startswith("{") else {"message": line.rstrip()}
            with self._changed:
                self.lines.append(entry)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, message: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for entry in self.lines:
                    if entry.get("message") == message:
                        return entry
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    raise AssertionError(f"no log line {message!r}: {self.lines}")
                self._changed.wait(left)

    def finish(self, timeout: float = 180) -> tuple[int, dict]:
        """The exit status and the outcome line."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code, [line for line in self.lines if "result" in line][-1]

    def logged(self, message: str) -> dict:
        return next(line for line in self.lines if line.get("message") == message)


def moment(entry: dict) -> datetime:
    return datetime.fromisoformat(entry["time"])


# --- Replace restore: freeze, swap, thaw -------------------------------------------------------

RESTORE_RECORDS = 120
LIVE_RECORDS = 150


@pytest.fixture
def swap_setup(mongo, app_user, reference_backup, tmp_path):
    """A backup of RESTORE_RECORDS records, and LIVE_RECORDS other records in the collection."""
    directory = tmp_path / "swap"
    directory.mkdir()
    shutil.copy(reference_backup, directory / reference_backup.name)
    seed(mongo, app_user.database, sample_records(LIVE_RECORDS))
    return directory


def api_key_env() -> tuple[str, dict[str, str]]:
    """A write key, and the service's APP_API_KEYS for it (its hash only)."""
    key = secrets.token_urlsafe(32)
    digest = hashlib.sha256(key.encode()).hexdigest()
    keys = [{"name": "backup-test", "scope": "write", "sha256": digest}]
    return key, {"APP_API_KEYS": json.dumps(keys)}


@contextlib.contextmanager
def in_threads(stop: threading.Event, *targets: Callable[[], None]) -> Iterator[None]:
    """Run each target in a thread of its own until the block ends, then set ``stop``."""
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)


@dataclass
class Traffic:
    """Writes and reads through the real service, each answer with its wall-clock time."""

    url: str
    key: str
    writes: list[tuple[datetime, int, dict, dict]] = field(default_factory=list)
    reads: list[int] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _write(self, worker: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.key}"
        n = 0
        while not self.stop.is_set():
            response = session.post(f"{self.url}/data", json={"writer": worker, "n": n}, timeout=30)
            body = response.json()
            self.writes.append(
                (datetime.now(UTC), response.status_code, body, dict(response.headers))
            )
            n += 1
            if response.status_code == 503:
                time.sleep(0.05)

    def _read(self) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.key}"
        while not self.stop.is_set():
            self.reads.append(session.get(f"{self.url}/data?limit=5", timeout=30).status_code)
            time.sleep(0.05)

    def running(self) -> contextlib.AbstractContextManager:
        writers = [lambda n=n: self._write(n) for n in range(2)]
        return in_threads(self.stop, *writers, self._read)


@dataclass
class Watcher:
    """Polls the database: its collections and the write freeze, with the time of each look."""

    client: MongoClient
    database: str
    seen: list[tuple[set[str], bool]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        db = self.client[self.database]
        while not self.stop.is_set():
            frozen_before = maintenance.current(db) is not None
            names = set(db.list_collection_names())
            frozen_after = maintenance.current(db) is not None
            # A look counts as frozen only when the freeze held on both sides of it.
            self.seen.append((names, frozen_before and frozen_after))
            time.sleep(0.01)

    def running(self) -> contextlib.AbstractContextManager:
        return in_threads(self.stop, self._run)


def test_a_replace_restore_freezes_writes_around_the_swap_and_loses_none_after_the_thaw(
    mongo, app_user, swap_setup, tmp_path
):
    key, keys_env = api_key_env()
    uri = mongo_uri(
        app_user.host, app_user.port, app_user.user, app_user.password, app_user.database
    )
    service = Gunicorn(service_env(uri, app_user.database, **keys_env), tmp_path)
    with mongo.client() as client, service:
        traffic = Traffic(service.url, key)
        watcher = Watcher(client, app_user.database)
        with watcher.running(), traffic.running():
            time.sleep(1)
            restoring = Running(app_user.env(swap_setup), "restore", "latest", "--replace")
            code, done = restoring.finish()
            time.sleep(2)
        assert code == 0, restoring.lines
        assert done["replaced"] >= LIVE_RECORDS
        frozen = restoring.logged("writes frozen")
        moved = restoring.logged("records moved aside")
        renamed = restoring.logged("staging collection renamed to records")
        thawed = restoring.logged("writes thawed")
        assert moment(frozen) <= moment(moved) <= moment(renamed) <= moment(thawed)
        settle = timedelta(seconds=maintenance.SETTLE_SECONDS)
        assert moment(moved) - moment(frozen) >= settle
        assert done["frozen_seconds"] >= maintenance.SETTLE_SECONDS

        # Whenever records was away, aside or a staging collection existed, writes were frozen.
        assert any(frozen for _, frozen in watcher.seen)
        for names, frozen_then in watcher.seen:
            swapping = "records" not in names or any(
                name.startswith(("records_previous_", "records_restore_")) for name in names
            )
            assert frozen_then or not swapping, names

        # No write acknowledged after the thaw is lost; every refused write was told why.
        after_thaw = [
            body["id"]
            for at, status, body, _ in traffic.writes
            if status == 201 and at > moment(thawed)
        ]
        assert after_thaw, "no write was acknowledged after the thaw"
        records = client[app_user.database]["records"]
        kept = {
            str(doc["_id"])
            for doc in records.find({"_id": {"$in": [ObjectId(i) for i in after_thaw]}}, {"_id": 1})
        }
        assert kept == set(after_thaw)
        for _, status, body, headers in traffic.writes:
            assert status in (201, 503), (status, body)
            if status == 503:
                assert body["error"]["code"] == "maintenance", body
                assert 1 <= int(headers["Retry-After"]) <= 60
        assert traffic.reads
        assert set(traffic.reads) == {200}

        # The backup's records are there, with the service's listing index.
        named = records.find({"data.name": {"$exists": True}}, {"data.name": 1})
        assert sorted(doc["data"]["name"] for doc in named) == sorted(
            f"sensor-{n}" for n in range(RESTORE_RECORDS)
        )
        names = {index["name"] for index in records.list_indexes()}
        assert "created_at_-1__id_-1" in names
        assert settled(client, app_user.database) == ["records"]


def named(command: str, prefix: str) -> Callable[[str], Callable[[dict], bool]]:
    """A matcher of the command ``command`` on a collection whose name starts with ``prefix``
    (in the database the test passes), for WireProxy.fault."""

    def for_database(database: str) -> Callable[[dict], bool]:
        def matches(body: dict) -> bool:
            value = str(body.get(command, ""))
            if command == "renameCollection":
                return value.startswith(f"{database}.{prefix}")
            return value.startswith(prefix) and body.get("$db") == database

        return matches

    return for_database


@dataclass(frozen=True)
class Fault:
    matches: Callable[[str], Callable[[dict], bool]]
    action: str
    stop_server: bool
    # Whether records had been renamed aside when the fault struck.
    moved: bool = False


ROLLED_BACK = {
    "FerretDB stopped while the staging collection loads": Fault(
        named("insert", "records_restore_"), "hold", True
    ),
    "the connection killed while the staging collection's indexes build": Fault(
        named("createIndexes", "records_restore_"), "kill", False
    ),
    "FerretDB stopped as records is renamed aside": Fault(
        named("renameCollection", "records"), "hold", True
    ),
    "the answer to the rename of records aside lost": Fault(
        named("renameCollection", "records"), "kill_reply", False, moved=True
    ),
    "FerretDB stopped as the staging collection is renamed to records": Fault(
        named("renameCollection", "records_restore_"), "hold", True, moved=True
    ),
}


def seeded_state(faulty: Faulty, directory: Path) -> tuple:
    """LIVE_RECORDS records in the collection and a backup of RESTORE_RECORDS others."""
    seed(faulty.admin, faulty.user.database, sample_records(RESTORE_RECORDS))
    dump(faulty.env(directory))
    with faulty.admin.client() as client:
        client[faulty.user.database].drop_collection("records")
    seed(faulty.admin, faulty.user.database, sample_records(LIVE_RECORDS))
    with faulty.admin.client() as client:
        return state(client, faulty.user.database)


def restore_with(faulty: Faulty, backups: Path, fault: Fault) -> tuple[int, dict]:
    """A replace restore of the latest backup that meets ``fault``; a server stopped by it
    is started again a second later. Returns the exit status and the outcome line."""
    faulty.proxy.fault(fault.matches(faulty.user.database), fault.action)
    restoring = Running(faulty.env(backups), "restore", "latest", "--replace")
    if fault.stop_server:
        faulty.stop_at_fault()
        time.sleep(1)
        faulty.server.start()
    code, last = restoring.finish()
    assert faulty.proxy.hit.is_set()
    return code, last


@needs_ferretdb
@pytest.mark.parametrize("where", list(ROLLED_BACK))
def test_a_failure_before_the_swap_is_done_leaves_the_previous_records_in_place(
    faulty, backups, where
):
    fault = ROLLED_BACK[where]
    before = seeded_state(faulty, backups)
    code, failed = restore_with(faulty, backups, fault)
    assert code == 1, failed
    assert (failed["result"], failed["reason"]) == ("failed", "database")
    assert failed["message"].startswith("Nothing was restored: the database did not answer")
    assert f"; records holds its {LIVE_RECORDS} records (" in failed["message"]
    assert "dropped the staging collection records_restore_" in failed["message"]
    put_back = "put the previous records back in records from records_previous_"
    assert (put_back in failed["message"]) == fault.moved
    with faulty.admin.client() as client:
        assert state(client, faulty.user.database) == before
        assert settled(client, faulty.user.database) == ["records"]


FINISHED = {
    "FerretDB stopped as the previous records are dropped": Fault(
        named("drop", "records_previous_"), "hold", True
    ),
    "the answer to the rename of the staging collection to records lost": Fault(
        named("renameCollection", "records_restore_"), "kill_reply", False
    ),
}


@needs_ferretdb
@pytest.mark.parametrize("where", list(FINISHED))
def test_a_failure_once_the_swap_is_done_finishes_the_restore(faulty, backups, where):
    seeded_state(faulty, backups)
    code, done = restore_with(faulty, backups, FINISHED[where])
    assert code == 0, done
    assert (done["records"], done["replaced"], done["previous_kept"]) == (
        RESTORE_RECORDS,
        LIVE_RECORDS,
        "",
    )
    with faulty.admin.client() as client:
        records = client[faulty.user.database]["records"]
        names = sorted(doc["data"]["name"] for doc in records.find({}, {"data.name": 1}))
        assert names == sorted(f"sensor-{n}" for n in range(RESTORE_RECORDS))
        assert settled(client, faulty.user.database) == ["records"]


def wait_until_the_freeze_is_stale(client: MongoClient, database: str) -> maintenance.Freeze:
    """The freeze a restore left, once it is old enough to be taken for a dead restore's."""
    freeze = maintenance.current(client[database])
    assert freeze is not None
    age = (datetime.now(UTC) - freeze.since).total_seconds()
    time.sleep(max(0.0, LIVE_FREEZE_SECONDS - age + 0.5))
    return freeze


@needs_ferretdb
@pytest.mark.parametrize("finisher", ["recover", "restore"])
def test_a_database_gone_mid_swap_leaves_both_copies_named_and_writes_frozen(
    faulty, backups, finisher
):
    before = seeded_state(faulty, backups)
    fault = named("renameCollection", "records_restore_")
    faulty.proxy.fault(fault(faulty.user.database), "hold")
    restoring = Running(
        faulty.env(backups), "restore", "latest", "--replace", "--recovery-seconds", "2"
    )
    faulty.stop_at_fault()
    code, failed = restoring.finish()
    assert code == 1, restoring.lines
    message = failed["message"]
    assert message.startswith("Nothing was restored: the database did not answer")
    assert f"the previous {LIVE_RECORDS} records are in records_previous_" in message
    assert f"the backup's {RESTORE_RECORDS} records in records_restore_" in message
    assert "run python -m flaskapp.backup recover" in message
    assert "\n" not in message

    faulty.server.start()
    with faulty.admin.client() as client:
        db = client[faulty.user.database]
        names = set(db.list_collection_names()) - {maintenance.COLLECTION}
        (previous,) = [n for n in names if n.startswith("records_previous_")]
        (staging,) = [n for n in names if n.startswith("records_restore_")]
        assert names == {previous, staging}
        assert previous in message
        assert staging in message
        assert db[previous].count_documents({}) == LIVE_RECORDS
        assert db[staging].count_documents({}) == RESTORE_RECORDS
        # Writes stay frozen while the records are aside, long after the lease would end.
        freeze = wait_until_the_freeze_is_stale(client, faulty.user.database)
        assert freeze.until - datetime.now(UTC) > timedelta(hours=1)

    if finisher == "recover":
        result = run_backup(faulty.env(backups), "recover")
        assert result.returncode == 0, result.stderr
        assert outcome(result)["message"] == (
            f"Recovered: put the previous records back in records from {previous}, dropped "
            f"the staging collection {staging}; thawed writes; records holds {LIVE_RECORDS} "
            "records."
        )
        with faulty.admin.client() as client:
            assert state(client, faulty.user.database) == before
            assert settled(client, faulty.user.database) == ["records"]
        return
    result = run_backup(faulty.env(backups), "restore", "latest", "--replace")
    assert result.returncode == 0, result.stderr
    done = outcome(result)
    assert done["recovered"] == [
        f"put the previous records back in records from {previous}, dropped the staging "
        f"collection {staging}"
    ]
    assert (done["records"], done["replaced"]) == (RESTORE_RECORDS, LIVE_RECORDS)
    with faulty.admin.client() as client:
        assert client[faulty.user.database]["records"].count_documents({}) == RESTORE_RECORDS
        assert settled(client, faulty.user.database) == ["records"]


def test_a_restore_stopped_by_sigterm_thaws_writes_and_leaves_the_records(
    mongo, app_user, swap_setup
):
    with mongo.client() as client:
        before = state(client, app_user.database)
    restoring = Running(app_user.env(swap_setup), "restore", "latest", "--replace")
    restoring.wait_for("writes frozen")
    restoring.proc.send_signal(signal.SIGTERM)
    code, failed = restoring.finish()
    assert code == 1
    assert (failed["result"], failed["reason"]) == ("failed", "terminated")
    assert failed["message"].startswith(
        f"Nothing was restored: the restore was stopped by a signal; records holds its "
        f"{LIVE_RECORDS} records"
    )
    with mongo.client() as client:
        assert state(client, app_user.database) == before
        assert settled(client, app_user.database) == ["records"]


def test_a_restore_or_recover_refuses_while_another_restore_holds_the_freeze(
    mongo, app_user, swap_setup
):
    with mongo.client() as client:
        db = client[app_user.database]
        before = state(client, app_user.database)
        maintenance.freeze(db, "restore of records-20260101T000000.000Z.jsonl", 60)
        try:
            for args in (("restore", "latest", "--replace"), ("recover",)):
                result = run_backup(app_user.env(swap_setup), *args)
                assert result.returncode == 1, result.stderr
                refused = outcome(result)
                assert (refused["result"], refused["reason"]) == ("refused", "busy")
                assert (
                    "another restore is running (restore of records-20260101T000000.000Z"
                    in (refused["message"])
                )
            assert state(client, app_user.database) == before
        finally:
            maintenance.thaw(db)
    idle = run_backup(app_user.env(swap_setup), "recover")
    assert idle.returncode == 0, idle.stderr
    assert outcome(idle)["message"] == (
        "Recovered: no restore had left anything, and writes were not frozen; records holds "
        f"{LIVE_RECORDS} records."
    )


# --- Drill ---------------------------------------------------------------------------------------

DRILL_CONTRACT = {
    "backup", "records", "matched", "identical", "changed", "missing_live", "scratch_dropped"
}  # fmt: skip


def drilled(result: subprocess.CompletedProcess) -> dict:
    """The one JSON line drill prints."""
    (line,) = result.stdout.splitlines()
    report = json.loads(line)
    assert set(report) == DRILL_CONTRACT
    return report


def test_a_drill_compares_the_backup_with_the_live_records_and_touches_nothing(
    mongo, app_user, backups
):
    records = sample_records(150)
    for record in records[:40]:
        record["data"]["verify"] = "run-1"
    seed(mongo, app_user.database, records)
    written = dump(app_user.env(backups))
    with mongo.client() as client:
        live = client[app_user.database]["records"]
        live.delete_many({"_id": {"$in": [r["_id"] for r in records[:5]]}})
        for record in records[5:8]:
            live.update_one({"_id": record["_id"]}, {"$set": {"data.value": -1}})
        live.insert_many([{"created_at": now_ms(), "data": {"verify": "run-1"}} for _ in range(10)])
        before = state(client, app_user.database)

    marked = run_backup(app_user.env(backups), "drill", "--match", '{"data.verify": "run-1"}')
    assert marked.returncode == 0, marked.stderr
    assert drilled(marked) == {
        "backup": written["file"],
        "records": 150,
        "matched": 40,
        "identical": 32,
        "changed": 3,
        "missing_live": 5,
        "scratch_dropped": True,
    }
    line = outcome(marked)
    assert line["message"].startswith(f"Drilled {written['file']}: restored its 150 records into")
    assert line["matched"] == 40

    everything = run_backup(app_user.env(backups), "drill", "--name", written["file"])
    assert everything.returncode == 0, everything.stderr
    report = drilled(everything)
    assert (report["matched"], report["identical"], report["changed"]) == (150, 142, 3)
    assert report["missing_live"] == 5
    with mongo.client() as client:
        assert state(client, app_user.database) == before
        assert set(client[app_user.database].list_collection_names()) == {"records"}


@pytest.mark.parametrize(
    ("match", "says"),
    [
        ("[1, 2]", "--match must be a JSON object (a MongoDB filter), got '[1, 2]'"),
        ("{data: 1", "--match must be a JSON object (a MongoDB filter), got '{data: 1'"),
        ('{"$where2": 1}', "--match is not a filter the database accepts"),
    ],
)
def test_a_drill_with_a_bad_filter_stops_with_one_sentence_and_leaves_nothing(
    mongo, app_user, backups, match, says
):
    seed(mongo, app_user.database, sample_records(20))
    dump(app_user.env(backups))
    with mongo.client() as client:
        before = state(client, app_user.database)
    result = run_backup(app_user.env(backups), "drill", "--match", match)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    line = outcome(result)
    assert (line["result"], line["reason"]) == ("refused", "usage")
    assert line["message"].startswith(f"The drill failed: {says}")
    assert "\n" not in line["message"]
    with mongo.client() as client:
        assert state(client, app_user.database) == before
        assert set(client[app_user.database].list_collection_names()) == {"records"}


@needs_ferretdb
def test_a_drill_cut_off_mid_load_drops_its_scratch_collection(faulty, backups):
    seed(faulty.admin, faulty.user.database, sample_records(RESTORE_RECORDS))
    dump(faulty.env(backups))
    with faulty.admin.client() as client:
        before = state(client, faulty.user.database)
    faulty.proxy.fault(named("insert", "records_drill_")(faulty.user.database), "kill")
    result = run_backup(faulty.env(backups), "drill")
    assert faulty.proxy.hit.is_set()
    assert result.returncode == 1, result.stderr
    line = outcome(result)
    assert (line["result"], line["reason"]) == ("failed", "database")
    assert line["message"].startswith("The drill failed: the database did not answer")
    with faulty.admin.client() as client:
        assert state(client, faulty.user.database) == before


# --- Retention -----------------------------------------------------------------------------------


def craft(directory: Path, age: timedelta, count: int, scheduled: bool = False) -> Path:
    """A complete backup of ``count`` small records, created ``age`` ago (as a dump writes
    it, through the tool's own writer)."""
    created = datetime.now(UTC) - age
    name = f"records-{created.strftime('%Y%m%dT%H%M%S.')}{created.microsecond // 1000:03d}Z.jsonl"
    path = directory / name
    header = {
        "database": "flaskdb",
        "collection": "records",
        "created": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "engine": "FerretDB 1.24.2",
        "indexes": [],
        "scheduled": scheduled,
        "collection_bytes": count * 300,
    }
    with path.open("wb") as out:
        writer = archive.Writer(out, header)
        for n in range(count):
            writer.record({"_id": ObjectId(), "created_at": created, "data": {"n": n}})
        writer.finish()
    return path


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def prune(directory: Path, *args: str) -> subprocess.CompletedProcess:
    return run_backup({"BACKUP_DIR": str(directory)}, "prune", *args)


def test_prune_refuses_while_the_newest_backup_has_shrunk_and_keeps_the_last_good_one(backups):
    days = [craft(backups, timedelta(days=d), 100) for d in (5, 4, 3)]
    wiped = craft(backups, timedelta(days=2), 0)
    everything = names(backups)

    refused = prune(backups, "--keep", "2")
    assert refused.returncode == 3, refused.stderr
    line = outcome(refused)
    assert (line["result"], line["reason"]) == ("refused", "retention")
    assert line["message"] == (
        f"Nothing was pruned: {wiped.name}, the newest backup, holds 0 records, fewer than 0.5 "
        f"of the 100 of {days[-1].name}, the backup before it (if that is wanted, prune with "
        "--min-ratio 0)."
    )
    assert names(backups) == everything

    # The wipe is accepted once: the backups beyond the newest two go.
    accepted = prune(backups, "--keep", "2", "--min-ratio", "0")
    assert accepted.returncode == 0, accepted.stderr
    assert names(backups) == sorted([days[-1].name, wiped.name])

    # Runs after it hold the wiped state too; the last good backup still stays.
    again = craft(backups, timedelta(days=1), 0)
    kept = prune(backups, "--keep", "2")
    assert kept.returncode == 3, kept.stderr
    assert outcome(kept)["message"] == (
        f"Nothing was pruned: deleting {days[-1].name} (100 records) would leave no backup with "
        "0.5 of its records (the backups kept hold 0 records at most) (if that is wanted, prune "
        "with --min-ratio 0)."
    )
    assert names(backups) == sorted([days[-1].name, wiped.name, again.name])


def test_prune_keeps_the_newest_complete_backups_and_counts_no_damaged_file(backups):
    old = craft(backups, timedelta(days=4), 90)
    kept_old = craft(backups, timedelta(days=3), 100)
    damaged = craft(backups, timedelta(days=2), 100)
    damaged.write_bytes(damaged.read_bytes()[:-30])
    newest = craft(backups, timedelta(days=1), 110)
    result = prune(backups, "--keep", "2")
    assert result.returncode == 0, result.stderr
    assert outcome(result)["deleted"] == [old.name]
    assert names(backups) == sorted([kept_old.name, damaged.name, newest.name])

    growing = prune(backups, "--keep", "1", "--min-ratio", "0.99")
    assert growing.returncode == 0, growing.stderr
    assert names(backups) == [newest.name]

    for bad in ("2", "-0.1", "half"):
        invalid = prune(backups, "--keep", "1", "--min-ratio", bad)
        assert invalid.returncode == 2
        assert f"must be a number from 0 to 1, got '{bad}'" in invalid.stderr


def test_scheduled_dumps_after_a_wipe_keep_every_good_backup_and_exit_3(mongo, app_user, backups):
    seed(mongo, app_user.database, sample_records(60))
    env = app_user.env(backups)
    good = [dump(env, "--keep", "2", "--scheduled")["file"] for _ in range(2)]
    with mongo.client() as client:
        client[app_user.database]["records"].delete_many({})

    for run in range(2):
        result = run_backup(env, "dump", "--keep", "2", "--scheduled")
        assert result.returncode == 3, result.stderr
        line = outcome(result)
        assert (line["result"], line["reason"], line["records"]) == ("refused", "retention", 0)
        assert line["message"].startswith(f"Wrote {line['file']}: 0 records of {app_user.database}")
        assert "; pruned nothing, because " in line["message"]
        assert line["pruned"] == []
        assert json.loads((backups / line["file"]).read_text().splitlines()[0])["scheduled"]
        assert set(good) <= set(names(backups))
        assert len(names(backups)) == 3 + run

    listed = run_backup(env, "list")
    assert [json.loads(entry)["scheduled"] for entry in listed.stdout.splitlines()] == [True] * 4


# --- Room for the next backup --------------------------------------------------------------------


@pytest.fixture
def small_volume(tmp_path) -> Iterator[Path]:
    """A 6 MiB file system of its own (tmpfs; root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited file system needs root")
    path = tmp_path / "volume"
    path.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def fill(volume: Path, leave: int) -> Path:
    """A filler file that leaves ``leave`` bytes free on the volume."""
    filler = volume / "filler"
    stats = os.statvfs(volume)
    free = stats.f_bavail * stats.f_frsize + (filler.stat().st_size if filler.exists() else 0)
    filler.unlink(missing_ok=True)
    with filler.open("wb") as out:
        out.write(b"\0" * max(0, free - leave))
    return filler


def room(result: subprocess.CompletedProcess) -> dict:
    return next(line for line in log_lines(result) if line["message"] == "room for the next backup")


def test_a_dump_makes_room_by_pruning_first_or_fails_before_writing_anything(
    mongo, app_user, small_volume
):
    with mongo.client() as client:
        client[app_user.database]["records"].insert_many(
            [{"created_at": now_ms(), "data": {"n": n, "text": "r" * 2500}} for n in range(300)]
        )
    env = app_user.env(small_volume)
    first = dump(env, "--keep", "2")
    second = run_backup(env, "dump", "--keep", "2")
    assert second.returncode == 0, second.stderr
    needed = room(second)["needed"]
    size = outcome(second)["bytes"]
    assert size < needed < 2 * size + (2 << 20)

    # Short by less than one backup: the oldest beyond keep - 1 goes first.
    fill(small_volume, needed - size // 2)
    made = run_backup(env, "dump", "--keep", "2")
    assert made.returncode == 0, made.stderr
    line = outcome(made)
    assert line["made_room"] == [first["file"]]
    assert ", after deleting 1 old backup to make room for about " in line["message"]
    assert sorted(names(small_volume)) == sorted(["filler", outcome(second)["file"], line["file"]])

    # Short by more than what may be deleted: nothing is deleted, nothing written.
    before = names(small_volume)
    fill(small_volume, needed - size * 3 // 2)
    short = run_backup(env, "dump", "--keep", "2")
    assert short.returncode == 1, short.stderr
    line = outcome(short)
    assert (line["result"], line["reason"]) == ("failed", "no_space")
    assert line["message"].startswith(
        f"No backup was written: the next backup needs about {needed / (1 << 20):.1f} MiB and "
        f"{small_volume} has "
    )
    assert " once the 1 backup beyond the newest 1 are deleted: " in line["message"]
    assert line["message"].endswith(
        " more is needed (a larger backup volume (backup_storage_size) or fewer backups "
        "(backup_keep))."
    )
    assert names(small_volume) == before

    # Without --keep nothing is ever deleted.
    by_hand = run_backup(env, "dump")
    assert by_hand.returncode == 1
    assert "(prune --keep N deletes old backups;" in outcome(by_hand)["message"]
    assert names(small_volume) == before


# --- Verification of every backup, and the status ------------------------------------------------


def test_verify_all_reads_every_backup_whole_and_names_the_damaged_ones(backups):
    good = [craft(backups, timedelta(days=d), 30) for d in (3, 2)]
    env = {"BACKUP_DIR": str(backups)}
    result = run_backup(env, "verify", "--all")
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["name"], r["ok"], r["records"]) for r in reports] == [
        (good[1].name, True, 30),
        (good[0].name, True, 30),
    ]
    assert outcome(result)["message"] == (
        f"Read 2 backups in {backups} whole: every one is complete, its records counted and "
        "its SHA-256 matching."
    )

    content = bytearray(good[0].read_bytes())
    content[len(content) // 2] ^= 0x01
    good[0].write_bytes(bytes(content))
    damaged = run_backup(env, "verify", "--all")
    assert damaged.returncode == 1
    reports = [json.loads(line) for line in damaged.stdout.splitlines()]
    assert [(r["name"], r["ok"]) for r in reports] == [(good[1].name, True), (good[0].name, False)]
    line = outcome(damaged)
    assert (line["result"], line["reason"], line["damaged"]) == (
        "refused",
        "damaged",
        [good[0].name],
    )
    assert line["message"].startswith(
        f"Verification failed: 1 of the 2 backups in {backups} is damaged: {good[0].name} is "
        "corrupted"
    )


def status_of(directory: Path, *args: str) -> tuple[dict, dict]:
    result = run_backup({"BACKUP_DIR": str(directory)}, "status", *args)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    return json.loads(line), outcome(result)


def test_status_names_the_newest_good_backup_and_says_when_scheduled_ones_are_stale(backups):
    report, line = status_of(backups, "--max-age-seconds", "3600")
    assert (report["backup"], report["stale"], report["scheduled_backup"]) == (None, True, None)
    assert line["message"] == (
        f"There is no good backup in {backups}; stale: there is no good scheduled backup."
    )
    assert status_of(backups)[0]["stale"] is False

    scheduled = craft(backups, timedelta(hours=3), 40, scheduled=True)
    by_hand = craft(backups, timedelta(minutes=10), 41)
    damaged = craft(backups, timedelta(minutes=1), 42, scheduled=True)
    damaged.write_bytes(damaged.read_bytes()[:-1])

    report, line = status_of(backups, "--max-age-seconds", "3600")
    assert (report["backup"], report["records"], report["scheduled"]) == (by_hand.name, 41, False)
    assert 590 < report["age_seconds"] < 900
    assert report["scheduled_backup"] == scheduled.name
    assert 3 * 3600 - 10 < report["scheduled_age_seconds"] < 3 * 3600 + 300
    assert (report["stale"], report["max_age_seconds"], report["damaged"]) == (
        True, 3600, [damaged.name]
    )  # fmt: skip
    assert line["message"].startswith(
        f"The newest good backup is {by_hand.name} (41 records, made by hand, 0.2 h old); the "
        "newest good scheduled one is 3.0 h old, stale: older than 2.0 h"
    )

    fresh, line = status_of(backups, "--max-age-seconds", "7200")
    assert fresh["stale"] is False
    assert line["message"].endswith("the newest good scheduled one is 3.0 h old, within 4.0 h.")
