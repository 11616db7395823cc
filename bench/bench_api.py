"""Benchmark: the service over HTTP against the same operations issued directly with pymongo.

    python bench/bench_api.py [--duration 10] [--clients 4]

Starts FerretDB (or uses TEST_MONGODB_URI), starts the service with its production gunicorn
configuration, then for a fixed time per phase drives it from several client processes
(persistent HTTP/1.1 connections): POST /data, then GET /data?limit=50. The raw ceiling runs
the same insert (same write concern) and the same newest-first query of 50 records directly
with pymongo from the same number of processes. Prints requests per second and p50/p99
latency for each, and the ratio service/raw. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "app"))
sys.path.insert(0, str(REPO / "app"))

from flaskapp.db import DURABLE, LISTING_INDEX  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from support import FerretDB, Gunicorn, ferretdb_binary  # noqa: E402

DATABASE = "bench"
PAYLOAD = {"sensor": "bench", "value": 21.5, "tags": ["a", "b"], "ok": True}


def _measure(start_at: float, stop_at: float, operation: Callable[[], object]) -> list[float]:
    """Wait for the common start, then time operation() back to back until stop_at.

    Both sides of the comparison go through here, so they are timed the same way."""
    latencies: list[float] = []
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() < stop_at:
        began = time.perf_counter()
        operation()
        latencies.append(time.perf_counter() - began)
    return latencies


def _http_worker(args: tuple[str, int, str, float, float]) -> list[float]:
    host, port, op, start_at, stop_at = args
    conn = http.client.HTTPConnection(host, port, timeout=30)
    body = json.dumps(PAYLOAD).encode()
    headers = {"Content-Type": "application/json"}

    def request() -> None:
        if op == "post":
            conn.request("POST", "/data", body=body, headers=headers)
        else:
            conn.request("GET", "/data?limit=50")
        response = conn.getresponse()
        response.read()
        if response.status not in (200, 201):
            raise RuntimeError(f"{op}: HTTP {response.status}")

    latencies = _measure(start_at, stop_at, request)
    conn.close()
    return latencies


def _raw_worker(args: tuple[str, str, float, float]) -> list[float]:
    uri, op, start_at, stop_at = args
    client = MongoClient(uri, tz_aware=True)
    records = client[DATABASE].get_collection("records", write_concern=DURABLE)
    records.find_one()  # connect and authenticate before the clock starts

    def query() -> None:
        if op == "post":
            records.insert_one({"created_at": datetime.now(UTC), "data": dict(PAYLOAD)})
        else:
            docs = list(records.find({}).sort(LISTING_INDEX).limit(50))
            # The service turns documents into JSON; do the same share of the work here.
            json.dumps([{"id": str(d["_id"]), "data": d["data"]} for d in docs])

    latencies = _measure(start_at, stop_at, query)
    client.close()
    return latencies


def _phase(
    pool: mp.pool.Pool,
    worker: Callable[[tuple], list[float]],
    args_for: Callable[[float, float], tuple],
    clients: int,
    duration: float,
) -> dict:
    start_at = time.time() + 1.0
    stop_at = start_at + duration
    results = pool.map(worker, [args_for(start_at, stop_at) for _ in range(clients)])
    latencies = sorted(x for chunk in results for x in chunk)
    if not latencies:
        raise RuntimeError("no request completed")
    return {
        "requests": len(latencies),
        "rps": len(latencies) / duration,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument(
        "--records", type=int, default=1000, help="records present during the GET phases"
    )
    parser.add_argument("--report", type=Path, default=REPO / "reports" / "bench-api.json")
    args = parser.parse_args()
    if not 1 <= args.duration <= 120 or not 1 <= args.clients <= 32:
        parser.error("--duration must be 1-120 and --clients 1-32")
    if not 50 <= args.records <= 100_000:
        parser.error("--records must be 50-100000")

    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    external = os.environ.get("TEST_MONGODB_URI", "").strip()
    ferret = None
    if external:
        uri = external
    else:
        ferret = FerretDB(ferretdb_binary(), work / "data")
        ferret.start()
        uri = ferret.admin_uri
    service = Gunicorn(
        {
            "MONGODB_URI": uri,
            "MONGODB_DATABASE": DATABASE,
            "LOG_LEVEL": "WARNING",
            # As many listings at once as the raw side runs, so both see the same concurrency,
            # and no time limit shorter than the raw side's.
            "APP_LISTING_CONCURRENCY": str(args.clients),
            "APP_QUERY_TIMEOUT_MS": "600000",
        },
        work,
        workers=int(os.environ.get("GUNICORN_WORKERS", "0")) or 2,
    )
    results: dict[str, dict] = {}
    try:
        service.start()
        with MongoClient(uri, tz_aware=True) as client:
            client.drop_database(DATABASE)
            records = client[DATABASE]["records"]
            records.create_index(LISTING_INDEX)
            # A fixed data set for the listing phases: FerretDB sorts in memory, so the
            # cost of GET /data grows with the collection and must be compared at one size.
            records.insert_many(
                [
                    {"created_at": datetime.now(UTC), "data": dict(PAYLOAD, seq=n)}
                    for n in range(args.records)
                ]
            )
        with mp.get_context("fork").Pool(args.clients) as pool:
            http_args = {
                op: (lambda a, b, op=op: ("127.0.0.1", service.port, op, a, b))
                for op in ("post", "get")
            }
            raw_args = {op: (lambda a, b, op=op: (uri, op, a, b)) for op in ("post", "get")}
            for name, worker, args_for in (
                ("service GET /data?limit=50", _http_worker, http_args["get"]),
                ("raw find limit 50", _raw_worker, raw_args["get"]),
                ("service POST /data", _http_worker, http_args["post"]),
                ("raw insert_one", _raw_worker, raw_args["post"]),
            ):
                results[name] = _phase(pool, worker, args_for, args.clients, args.duration)
        with MongoClient(uri) as client:
            stored = client[DATABASE]["records"].count_documents({})
            client.drop_database(DATABASE)
    finally:
        service.stop()
        if ferret is not None:
            ferret.stop()

    server = "TEST_MONGODB_URI" if external else "FerretDB 1.24.2 (SQLite)"
    print(
        f"\nbench-api: {args.clients} client processes, {args.duration:.0f} s per phase, "
        f"gunicorn workers={service.env['GUNICORN_WORKERS']} (production worker class), {server}, "
        f"{os.cpu_count()} CPUs; GET phases over {args.records} records, "
        f"{stored} records at the end"
    )
    print(f"{'operation':<30}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, r in results.items():
        print(f"{name:<30}{r['rps']:>10.1f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}")
    for label, svc, raw in (
        ("POST /data", "service POST /data", "raw insert_one"),
        ("GET /data?limit=50", "service GET /data?limit=50", "raw find limit 50"),
    ):
        ratio = results[svc]["rps"] / results[raw]["rps"]
        p50 = results[svc]["p50_ms"] / results[raw]["p50_ms"]
        print(f"ratio service/raw {label:<20} throughput {ratio:5.2f}   p50 latency {p50:5.2f}x")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(
        json.dumps(
            {
                "clients": args.clients,
                "duration_s": args.duration,
                "server": server,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"report: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
