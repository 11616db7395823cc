"""Benchmark: dump, verify, restore and drill of the records with python -m flaskapp.backup.

    python bench/bench_backup.py [--records 100000] [--rounds 2] [--baseline REV | --no-baseline]

Starts FerretDB (or uses TEST_MONGODB_URI), fills the records collection with records shaped
like the service's (the listing index, created_at, a small JSON object under data), then runs
the tool as the Kubernetes Jobs do, as a separate process: dump, verify, a replace restore over
the full collection, and a drill. Beside each replace restore a writer inserts a record every
20 ms and, as the service does, skips while a write freeze is in force (maintenance.FreezeCheck);
afterwards the bench counts the acknowledged writes that are gone, and how far into the restore
they had been acknowledged: a replace restore replaces every write made before it takes hold,
so what matters is how long it goes on acknowledging writes that it then replaces.

The same replace restore is run with the tool of ``--baseline`` (default: the revision before
the freeze-and-swap restore, found in git history), extracted with ``git archive``: it dropped
records and renamed the staging collection in, without a freeze. The two take turns, in
alternating order, for ``--rounds`` rounds. Prints for each operation the
wall time, records and MiB a second and the peak resident memory of the process, then the two
restores side by side (time, how long writes were refused, writes lost), and writes it all to
reports/bench-backup.json. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "app"))
sys.path.insert(0, str(REPO / "app"))

from flaskapp import maintenance  # noqa: E402
from flaskapp.db import LISTING_INDEX, LISTING_INDEX_NAME  # noqa: E402
from measure import Measured, run_measured  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from pymongo.errors import PyMongoError  # noqa: E402
from support import APP_DIR, FerretDB, ferretdb_binary  # noqa: E402

DATABASE = "bench_backup"
RESTORE_PY = "app/flaskapp/backup/restore.py"
# A writer's pause between two inserts.
WRITE_PAUSE = 0.02


def _record(n: int, base: datetime) -> dict:
    return {
        "created_at": base + timedelta(milliseconds=n),
        "data": {"sensor": f"sensor-{n % 100}", "value": n * 0.25, "seq": n, "tags": ["a", "b"]},
    }


def _run(uri: str, app_dir: Path, directory: Path, *args: str) -> tuple[Measured, dict]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "BACKUP_"))},
        "PYTHONPATH": str(app_dir),
        "MONGODB_URI": uri,
        "MONGODB_DATABASE": DATABASE,
        "BACKUP_DIR": str(directory),
    }
    measured = run_measured([sys.executable, "-m", "flaskapp.backup", *args], env)
    lines = [json.loads(line) for line in measured.stderr.splitlines() if line.startswith("{")]
    outcome = next((line for line in reversed(lines) if "result" in line), {})
    if measured.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {measured.stderr[-2000:]}")
    return measured, outcome


def _git(*args: str) -> bytes:
    """The output of a git command in this repository."""
    git = shutil.which("git")
    if git is None:
        raise RuntimeError("git is not installed: give --no-baseline")
    return subprocess.run(  # noqa: S603 (this repository's history)
        [git, *args], cwd=REPO, capture_output=True, check=True
    ).stdout


def baseline_revision() -> str:
    """The revision before the one that brought the write freeze into the restore."""
    found = _git("log", "--format=%H", "-S", "FreezeLease", "--", RESTORE_PY).split()
    if not found:
        raise RuntimeError(f"no revision of {RESTORE_PY} brought FreezeLease")
    return f"{found[-1].decode()}^"


def extract_app(revision: str, into: Path) -> Path:
    """app/ of ``revision``, from git, as a directory for PYTHONPATH."""
    with tarfile.open(fileobj=BytesIO(_git("archive", "--format=tar", revision, "app"))) as tar:
        tar.extractall(into, filter="data")
    return into / "app"


@dataclass
class Writer:
    """Inserts a record every WRITE_PAUSE, skipping while writes are frozen, as the service
    does; remembers when each write was acknowledged and how often one was refused."""

    uri: str
    acknowledged: list[tuple[float, object]] = field(default_factory=list)
    refused: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        freeze = maintenance.FreezeCheck()
        with MongoClient(self.uri, tz_aware=True, serverSelectionTimeoutMS=3000) as client:
            db = client[DATABASE]
            while not self.stop.wait(WRITE_PAUSE):
                try:
                    if freeze.current(db) is not None:
                        self.refused += 1
                        continue
                    document = {"created_at": datetime.now(UTC), "data": {"writer": True}}
                    db["records"].insert_one(document)
                    self.acknowledged.append((time.monotonic(), document["_id"]))
                except PyMongoError:
                    self.refused += 1

    def lost(self) -> list[float]:
        """When each acknowledged write that is gone was acknowledged."""
        ids = [oid for _, oid in self.acknowledged]
        with MongoClient(self.uri) as client:
            found = client[DATABASE]["records"].find({"_id": {"$in": ids}}, {"_id": 1})
            kept = {doc["_id"] for doc in found}
        return [at for at, oid in self.acknowledged if oid not in kept]


def _restore_beside_a_writer(uri: str, app_dir: Path, backups: Path) -> dict:
    writer = Writer(uri)
    load = os.getloadavg()[0]
    thread = threading.Thread(target=writer.run)
    thread.start()
    try:
        time.sleep(1)
        started = time.monotonic()
        measured, outcome = _run(uri, app_dir, backups, "restore", "latest", "--replace")
        ended = time.monotonic()
        time.sleep(1)
    finally:
        writer.stop.set()
        thread.join(timeout=60)
    lost = writer.lost()
    during = [at for at, _ in writer.acknowledged if started <= at <= ended]
    return {
        "load_average": round(load, 1),
        "seconds": round(measured.seconds, 2),
        "peak_rss_mib": round(measured.peak_mib, 1),
        "frozen_seconds": outcome.get("frozen_seconds", 0.0),
        "swap_seconds": outcome.get("swap_seconds"),
        "writes_refused": writer.refused,
        "acknowledged_during": len(during),
        "lost_during": len([at for at in lost if started <= at <= ended]),
        # How far into the restore the last write that is gone had been acknowledged.
        "lost_until_seconds": round(max((at - started for at in lost), default=0.0), 2),
        "acknowledged_after": len([at for at, _ in writer.acknowledged if at > ended]),
        "lost_after": len([at for at in lost if at > ended]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="records to back up")
    parser.add_argument("--baseline", help="git revision whose tool is the restore of today")
    parser.add_argument("--no-baseline", action="store_true", help="time the current tool only")
    parser.add_argument(
        "--rounds", type=int, default=2, help="restores of each tool, in alternating order"
    )
    parser.add_argument("--report", type=Path, default=REPO / "reports" / "bench-backup.json")
    args = parser.parse_args()
    if not 1000 <= args.records <= 1_000_000:
        parser.error("--records must be 1000-1000000")
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds must be 1-10")

    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    backups = work / "backups"
    backups.mkdir()
    baseline = None if args.no_baseline else (args.baseline or baseline_revision())
    baseline_app = extract_app(baseline, work / "baseline") if baseline else None
    external = os.environ.get("TEST_MONGODB_URI", "").strip()
    results: dict[str, dict] = {}
    restores: list[dict] = []
    with contextlib.ExitStack() as servers:
        uri = (
            external or servers.enter_context(FerretDB(ferretdb_binary(), work / "data")).admin_uri
        )
        with MongoClient(uri, tz_aware=True) as client:
            client.drop_database(DATABASE)
            records = client[DATABASE]["records"]
            records.create_index(LISTING_INDEX, name=LISTING_INDEX_NAME)
            base = datetime.now(UTC) - timedelta(days=1)
            for start in range(0, args.records, 5000):
                stop = min(start + 5000, args.records)
                records.insert_many([_record(n, base) for n in range(start, stop)])
        dumped, written = _run(uri, APP_DIR, backups, "dump")
        size = written["bytes"]
        verified, _ = _run(uri, APP_DIR, backups, "verify", "latest")
        tools = [("freeze-and-swap", APP_DIR)]
        if baseline_app is not None:
            tools.insert(0, ("today", baseline_app))
        for round_number in range(1, args.rounds + 1):
            for name, app_dir in tools if round_number % 2 else reversed(tools):
                result = _restore_beside_a_writer(uri, app_dir, backups)
                restores.append({"round": round_number, "restore": name, **result})
        drilled, drill = _run(uri, APP_DIR, backups, "drill")
        with MongoClient(uri) as client:
            count = client[DATABASE]["records"].count_documents({"data.seq": {"$exists": True}})
            client.drop_database(DATABASE)
        if count != args.records or written["records"] != args.records:
            raise RuntimeError(f"dumped {written['records']} and restored {count} records")
        if drill["identical"] != args.records:
            raise RuntimeError(f"the drill found {drill['identical']} identical records")
        timed = {"dump": dumped, "verify": verified, "drill": drilled}
        for name, measured in timed.items():
            results[name] = {
                "seconds": round(measured.seconds, 2),
                "records_per_second": round(args.records / measured.seconds),
                "mib_per_second": round(size / (1 << 20) / measured.seconds, 2),
                "peak_rss_mib": round(measured.peak_mib, 1),
            }

    server = "TEST_MONGODB_URI" if external else "FerretDB 1.24.2 (SQLite)"
    print(
        f"\nbench-backup: {args.records} records, backup file {size / (1 << 20):.1f} MiB, "
        f"{server}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'operation':<10}{'seconds':>10}{'records/s':>12}{'MiB/s':>8}{'peak RSS MiB':>14}")
    for name, r in results.items():
        print(
            f"{name:<10}{r['seconds']:>10.1f}{r['records_per_second']:>12}"
            f"{r['mib_per_second']:>8.1f}{r['peak_rss_mib']:>14.1f}"
        )
    print(f"\nreplace restore over {args.records} records, a writer every {WRITE_PAUSE:.2f} s")
    print(
        f"{'restore':<19}{'seconds':>8}{'frozen s':>9}{'swap s':>7}{'refused':>8}"
        f"{'acked during':>13}{'lost':>5}{'lost until s':>13}{'acked after':>12}{'lost':>5}"
        f"{'RSS MiB':>8}{'load':>6}"
    )
    for r in restores:
        name = f"{r['round']}: {r['restore']}"
        swap = "-" if r["swap_seconds"] is None else f"{r['swap_seconds']:.3f}"
        print(
            f"{name:<19}{r['seconds']:>8.1f}{r['frozen_seconds']:>9.1f}{swap:>7}"
            f"{r['writes_refused']:>8}{r['acknowledged_during']:>13}{r['lost_during']:>5}"
            f"{r['lost_until_seconds']:>13.1f}{r['acknowledged_after']:>12}{r['lost_after']:>5}"
            f"{r['peak_rss_mib']:>8.1f}{r['load_average']:>6.1f}"
        )
    if baseline:
        print(f"(today: the tool of {baseline})")
    report = {
        "records": args.records,
        "bytes": size,
        "server": server,
        "baseline": baseline,
        "results": results,
        "restores": restores,
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
