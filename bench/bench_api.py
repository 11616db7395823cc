"""Benchmark: the service over HTTP against the same operations issued directly with pymongo.

    python bench/bench_api.py [--duration 5] [--rounds 3] [--clients 4]

Starts FerretDB (or uses TEST_MONGODB_URI), starts the service with its production gunicorn
configuration, then drives it from several client processes (persistent HTTP/1.1
connections): GET /data?limit=50, then POST /data. The raw ceiling runs the same insert (same
write concern) and the same newest-first query of 50 records directly with pymongo from the
same number of processes. For POST a third contender, the floor (bench/floor_app.py: a bare
WSGI callable doing the same insert under the same gunicorn settings), shows what the HTTP hop
alone costs. Each contender runs once per round for a fixed time, in an order that rotates
from round to round, so that drift of the machine or of the growing collection falls on all
of them alike. Prints requests per second and p50/p99 latency for each, the ratio service/raw
over all rounds and its spread across rounds. Everything it starts is stopped at the end.
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

from flaskapp.db import COLLECTION, DURABLE, LISTING_INDEX  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from support import WRITE_KEY, FerretDB, Gunicorn, ferretdb_binary  # noqa: E402

DATABASE = "bench"
# The contenders, as printed and as keyed in the report.
SERVICE_GET = "service GET /data?limit=50"
RAW_GET = "raw find limit 50"
SERVICE_POST = "service POST /data"
FLOOR_POST = "floor POST (bare WSGI)"
RAW_POST = "raw insert_one"
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
    key = {"Authorization": f"Bearer {WRITE_KEY}"}  # the floor ignores it
    headers = {"Content-Type": "application/json", **key}

    def request() -> None:
        if op == "post":
            conn.request("POST", "/data", body=body, headers=headers)
        else:
            conn.request("GET", "/data?limit=50", headers=key)
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
    records = client[DATABASE].get_collection(COLLECTION, write_concern=DURABLE)
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


class Floor(Gunicorn):
    """bench/floor_app.py under the service's gunicorn settings."""

    def __init__(self, env: dict[str, str], workdir: Path, workers: int) -> None:
        super().__init__(env, workdir, workers=workers)
        self.env["PYTHONPATH"] += os.pathsep + str(REPO / "bench")

    def command(self) -> list[str]:
        return [*super().command()[:-1], "floor_app:app"]


def _phase(
    pool: mp.pool.Pool,
    worker: Callable[[tuple], list[float]],
    args_for: Callable[[float, float], tuple],
    clients: int,
    duration: float,
) -> list[float]:
    """Latencies of every operation the clients completed in one timed phase."""
    start_at = time.time() + 1.0
    stop_at = start_at + duration
    results = pool.map(worker, [args_for(start_at, stop_at) for _ in range(clients)])
    latencies = [x for chunk in results for x in chunk]
    if not latencies:
        raise RuntimeError("no request completed")
    return latencies


def _summary(latencies: list[float], seconds: float) -> dict:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "rps": len(ordered) / seconds,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


def _rounds(
    pool: mp.pool.Pool,
    contenders: list[tuple[str, Callable[[tuple], list[float]], Callable[[float, float], tuple]]],
    rounds: int,
    clients: int,
    duration: float,
) -> dict[str, list[list[float]]]:
    """Each contender once per round, the order rotated by one from each round to the next."""
    measured: dict[str, list[list[float]]] = {name: [] for name, _, _ in contenders}
    for round_no in range(rounds):
        shift = round_no % len(contenders)
        for name, worker, args_for in contenders[shift:] + contenders[:shift]:
            measured[name].append(_phase(pool, worker, args_for, clients, duration))
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=3, help="phases per contender")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument(
        "--records", type=int, default=1000, help="records present during the GET phases"
    )
    parser.add_argument("--report", type=Path, default=REPO / "reports" / "bench-api.json")
    args = parser.parse_args()
    if not 1 <= args.duration <= 120 or not 1 <= args.clients <= 32:
        parser.error("--duration must be 1-120 and --clients 1-32")
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be 1-20")
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
    env = {
        "MONGODB_URI": uri,
        "MONGODB_DATABASE": DATABASE,
        "LOG_LEVEL": "WARNING",
        # As many listings at once as the raw side runs, so both see the same concurrency,
        # and no time limit shorter than the raw side's.
        "APP_LISTING_CONCURRENCY": str(args.clients),
        "APP_QUERY_TIMEOUT_MS": "600000",
    }
    workers = int(os.environ.get("GUNICORN_WORKERS", "0")) or 2
    service = Gunicorn(env, work, workers=workers)
    floor = Floor(env, work, workers=workers)
    measured: dict[str, list[list[float]]] = {}
    try:
        service.start()
        floor.start()
        with MongoClient(uri, tz_aware=True) as client:
            client.drop_database(DATABASE)
            records = client[DATABASE][COLLECTION]
            records.create_index(LISTING_INDEX)
            # A fixed data set for the listing phases: FerretDB sorts in memory, so the
            # cost of GET /data grows with the collection and must be compared at one size.
            records.insert_many(
                [
                    {"created_at": datetime.now(UTC), "data": dict(PAYLOAD, seq=n)}
                    for n in range(args.records)
                ]
            )

        def http(port: int, op: str) -> Callable[[float, float], tuple]:
            return lambda a, b: ("127.0.0.1", port, op, a, b)

        def raw(op: str) -> Callable[[float, float], tuple]:
            return lambda a, b: (uri, op, a, b)

        with mp.get_context("fork").Pool(args.clients) as pool:
            for contenders in (
                [
                    (SERVICE_GET, _http_worker, http(service.port, "get")),
                    (RAW_GET, _raw_worker, raw("get")),
                ],
                [
                    (SERVICE_POST, _http_worker, http(service.port, "post")),
                    (FLOOR_POST, _http_worker, http(floor.port, "post")),
                    (RAW_POST, _raw_worker, raw("post")),
                ],
            ):
                measured |= _rounds(pool, contenders, args.rounds, args.clients, args.duration)
        with MongoClient(uri) as client:
            stored = client[DATABASE][COLLECTION].count_documents({})
            client.drop_database(DATABASE)
    finally:
        service.stop()
        floor.stop()
        if ferret is not None:
            ferret.stop()

    seconds = args.duration * args.rounds
    results = {
        name: _summary([x for phase in phases for x in phase], seconds)
        for name, phases in measured.items()
    }
    server = "TEST_MONGODB_URI" if external else "FerretDB 1.24.2 (SQLite)"
    print(
        f"\nbench-api: {args.clients} client processes, {args.rounds} rounds of "
        f"{args.duration:.0f} s per contender, gunicorn workers={workers} (production worker "
        f"class), {server}, {os.cpu_count()} CPUs; GET phases over {args.records} records, "
        f"{stored} records at the end"
    )
    print(f"{'operation':<30}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, r in results.items():
        print(f"{name:<30}{r['rps']:>10.1f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}")
    ratios = {}
    for label, contender, baseline in (
        ("service/raw POST /data", SERVICE_POST, RAW_POST),
        ("floor/raw POST /data", FLOOR_POST, RAW_POST),
        ("service/floor POST /data", SERVICE_POST, FLOOR_POST),
        ("service/raw GET /data?limit=50", SERVICE_GET, RAW_GET),
    ):
        ratio = results[contender]["rps"] / results[baseline]["rps"]
        p50 = results[contender]["p50_ms"] / results[baseline]["p50_ms"]
        pairs = zip(measured[contender], measured[baseline], strict=True)
        per_round = [len(a) / len(b) for a, b in pairs]
        ratios[label] = {"throughput": ratio, "rounds": per_round, "p50": p50}
        print(
            f"ratio {label:<32} throughput {ratio:5.2f} "
            f"(rounds {min(per_round):.2f}-{max(per_round):.2f})   p50 latency {p50:5.2f}x"
        )
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(
        json.dumps(
            {
                "clients": args.clients,
                "duration_s": args.duration,
                "rounds": args.rounds,
                "server": server,
                "results": results,
                "ratios": ratios,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"report: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
