"""python -m flaskapp.backup against the real server, as the application user.

Each test runs the tool as a subprocess with the credentials in its environment, the way the
Kubernetes Jobs run it, and checks the database directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bson import Int64, ObjectId
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from measure import run_measured
from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.errors import OperationFailure
from support import APP_DIR, free_port, mongo_uri

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
    """Every document of the database, byte for byte, and every index."""
    db = client[database]
    collections = {}
    for name in sorted(db.list_collection_names()):
        collection = db.get_collection(name, codec_options=RAW)
        documents = sorted(bytes(doc.raw) for doc in collection.find())
        indexes = sorted((i["name"], tuple(i["key"].items())) for i in collection.list_indexes())
        collections[name] = (documents, indexes)
    return tuple(collections.items())


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
        "format", "version", "database", "collection", "created", "engine", "indexes"
    }  # fmt: skip
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
        leftovers = [n for n in client[app_user.database].list_collection_names() if n != "records"]
        assert leftovers == []


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
    for stamp in ("20250101T000000.000Z", "20250102T000000.000Z"):
        (backups / f"records-{stamp}.jsonl").write_text("old\n")
    written = dump(app_user.env(backups), "--keep", "2")
    assert written["pruned"] == ["records-20250101T000000.000Z.jsonl"]
    assert sorted(p.name for p in backups.iterdir()) == sorted(
        [written["file"], "records-20250102T000000.000Z.jsonl"]
    )


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
