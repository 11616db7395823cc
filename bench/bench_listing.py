"""Benchmark: what GET /data costs as the collection grows, in time and in database memory.

    python bench/bench_listing.py [--sizes 1000 10000 100000] [--large-share 0.01] [--runs 2]

For each size, seeds the records collection with bulk inserts (a share of records of about
63 KB, the rest of about 200 bytes), then, each time on a freshly started database process so
that its peak resident memory belongs to one query:

- the service's listing, ``GET /data?limit=50`` and the page after it, through gunicorn with
  the production settings (the time limit raised so that nothing is cut short);
- the query the service used to send, ``find().sort(created_at -1, _id -1).limit(51)``,
  issued with pymongo;
- ``GET /data/<id>`` for the newest record.

Prints the median latency of ``--runs`` runs and the database's peak resident memory (VmHWM).
Starts FerretDB (TEST_MONGODB_URI is not used: the point is FerretDB's memory); everything it
starts is stopped at the end. 100,000 records take a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "app"))
sys.path.insert(0, str(REPO / "app"))

from flaskapp.db import LISTING_INDEX  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from support import READER, FerretDB, Gunicorn, ferretdb_binary  # noqa: E402

DATABASE = "bench_listing"
LARGE_BYTES = 63_000
SMALL = {"sensor": "bench", "value": 21.5, "tags": ["a", "b"], "note": "x" * 120}


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def seed(uri: str, size: int, large_share: float) -> tuple[int, object]:
    """Insert ``size`` records, every 1/large_share-th one large; returns their bytes and the
    id of the newest (the last row a scan of the table reaches)."""
    every = max(1, round(1 / large_share)) if large_share > 0 else 0
    now = datetime.now(UTC)
    total = 0
    with MongoClient(uri, tz_aware=True) as client:
        client.drop_database(DATABASE)
        records = client[DATABASE]["records"]
        records.create_index(LISTING_INDEX)
        batch: list[dict] = []
        for n in range(size):
            large = every and n % every == 0
            data = dict(SMALL, n=n, pad="x" * LARGE_BYTES) if large else dict(SMALL, n=n)
            batch.append({"created_at": now - timedelta(milliseconds=size - n), "data": data})
            total += LARGE_BYTES if large else 200
            if len(batch) == 1000 or (large and len(batch) >= 50):
                records.insert_many(batch)
                batch = []
        if batch:
            records.insert_many(batch)
        newest = records.find_one({}, {"_id": 1}, sort=LISTING_INDEX)
        assert newest is not None
    return total, newest["_id"]


def fresh(ferret: FerretDB) -> None:
    """Restart the database so that its peak memory starts from its resting level."""
    ferret.stop()
    ferret.start()


def timed(runs: int, ferret: FerretDB, operation: Callable[[], object]) -> tuple[float, float]:
    """Median seconds of ``runs`` runs and the database's peak MiB so far."""
    assert ferret.proc is not None
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        operation()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds), peak_mib(ferret.proc.pid)


def through_service(ferret: FerretDB, work: Path, runs: int, path: str) -> tuple[float, float]:
    """``GET path`` (and the page after it, for a listing) through a service started after a
    fresh database; returns seconds per request and the database's peak MiB."""
    fresh(ferret)
    env = {
        "MONGODB_URI": ferret.admin_uri,
        "MONGODB_DATABASE": DATABASE,
        "LOG_LEVEL": "WARNING",
        "APP_QUERY_TIMEOUT_MS": "600000",
        "MONGODB_TIMEOUT_MS": "600000",
    }
    with Gunicorn(env, work) as service, requests.Session() as session:
        session.auth = READER

        def get(url: str) -> dict:
            response = session.get(url, timeout=600)
            response.raise_for_status()
            return response.json()

        get(f"{service.url}/readyz")
        listing = path.startswith("/data?")

        def operation() -> None:
            page = get(f"{service.url}{path}")
            if listing:
                get(f"{service.url}{path}&cursor={page['next_cursor']}")

        seconds, peak = timed(runs, ferret, operation)
    return (seconds / 2 if listing else seconds), peak


def measure(ferret: FerretDB, work: Path, size: int, large_share: float, runs: int) -> dict:
    total, newest_id = seed(ferret.admin_uri, size, large_share)
    fresh(ferret)
    assert ferret.proc is not None
    result: dict[str, float] = {
        "records": size,
        "mb": total / 1e6,
        "rest": peak_mib(ferret.proc.pid),
    }
    result["service_s"], result["service_peak"] = through_service(
        ferret, work, runs, "/data?limit=50"
    )
    result["by_id_s"], _ = through_service(ferret, work, runs, f"/data/{newest_id}")
    fresh(ferret)
    with MongoClient(ferret.admin_uri, tz_aware=True, socketTimeoutMS=600_000) as client:
        records = client[DATABASE]["records"]

        def sort_query() -> None:
            list(records.find({}).sort(LISTING_INDEX).limit(51))

        result["sort_s"], result["sort_peak"] = timed(runs, ferret, sort_query)
        client.drop_database(DATABASE)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--large-share", type=float, default=0.01)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    if not 0 <= args.large_share <= 1 or not 1 <= args.runs <= 20:
        parser.error("--large-share must be 0-1 and --runs 1-20")
    work = Path(tempfile.mkdtemp(prefix="bench-listing-"))
    rows = []
    with FerretDB(ferretdb_binary(), work / "data") as ferret:
        for size in args.sizes:
            began = time.monotonic()
            rows.append(measure(ferret, work, size, args.large_share, args.runs))
            print(f"{size} records measured in {time.monotonic() - began:.0f} s", flush=True)
    print(
        f"\nbench-listing: FerretDB 1.24.2 (SQLite), {args.large_share:.0%} of records of"
        f" {LARGE_BYTES // 1000} KB, the rest about 200 B; median of {args.runs} runs;"
        " peak = the database's VmHWM from a fresh start"
    )
    print(
        f"{'records':>9}{'data MB':>9}{'GET /data ms':>14}{'peak MiB':>10}"
        f"{'sort query ms':>15}{'peak MiB':>10}{'GET /data/<id> ms':>19}{'rest MiB':>10}"
    )
    for r in rows:
        print(
            f"{r['records']:>9}{r['mb']:>9.1f}{r['service_s'] * 1000:>14.0f}"
            f"{r['service_peak']:>10.0f}{r['sort_s'] * 1000:>15.0f}{r['sort_peak']:>10.0f}"
            f"{r['by_id_s'] * 1000:>19.1f}{r['rest']:>10.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
