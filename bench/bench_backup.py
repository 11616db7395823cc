"""Benchmark: dump, verify and restore of the records collection with python -m flaskapp.backup.

    python bench/bench_backup.py [--records 100000]

Starts FerretDB (or uses TEST_MONGODB_URI), fills the records collection with records shaped
like the service's (the listing index, created_at, a small JSON object under data), then runs
the tool as the Kubernetes Jobs do, as a separate process: dump, verify, and restore into the
dropped collection. Prints for each the wall time, records and MiB a second, and the peak
resident memory of the process, and writes them to reports/bench-backup.json. Everything it
starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "app"))
sys.path.insert(0, str(REPO / "app"))

from flaskapp.db import LISTING_INDEX, LISTING_INDEX_NAME  # noqa: E402
from measure import Measured, run_measured  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from support import APP_DIR, FerretDB, ferretdb_binary  # noqa: E402

DATABASE = "bench_backup"


def _record(n: int, base: datetime) -> dict:
    return {
        "created_at": base + timedelta(milliseconds=n),
        "data": {"sensor": f"sensor-{n % 100}", "value": n * 0.25, "seq": n, "tags": ["a", "b"]},
    }


def _run(uri: str, directory: Path, *args: str) -> tuple[Measured, dict]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "BACKUP_"))},
        "PYTHONPATH": str(APP_DIR),
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="records to back up")
    parser.add_argument("--report", type=Path, default=REPO / "reports" / "bench-backup.json")
    args = parser.parse_args()
    if not 1000 <= args.records <= 1_000_000:
        parser.error("--records must be 1000-1000000")

    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    backups = work / "backups"
    backups.mkdir()
    external = os.environ.get("TEST_MONGODB_URI", "").strip()
    results: dict[str, dict] = {}
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
        dumped, written = _run(uri, backups, "dump")
        size = written["bytes"]
        verified, _ = _run(uri, backups, "verify", "latest")
        with MongoClient(uri) as client:
            # Dropped rather than emptied: FerretDB 1.24 deletes by listing every id in one
            # SQL statement, which fails above SQLite's 32766 variables.
            client[DATABASE].drop_collection("records")
        restored, _ = _run(uri, backups, "restore", "latest")
        with MongoClient(uri) as client:
            count = client[DATABASE]["records"].count_documents({})
            client.drop_database(DATABASE)
        if count != args.records or written["records"] != args.records:
            raise RuntimeError(f"dumped {written['records']} and restored {count} records")
        for name, measured in (("dump", dumped), ("verify", verified), ("restore", restored)):
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
    report = {"records": args.records, "bytes": size, "server": server, "results": results}
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
