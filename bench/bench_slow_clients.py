"""Benchmark: ordinary requests beside slow clients, for each gunicorn worker class.

    python bench/bench_slow_clients.py [--connections 60 300] [--seconds 20]

For each worker class (gevent, the default, and gthread) and each number of slow connections,
starts FerretDB and the service with its production gunicorn settings, opens that many
connections that send a request line and then one header line every 5 seconds (a client that
the server closes connects again), and meanwhile sends ordinary GET / requests one after the
other, each on a new connection with a 5-second timeout. Prints how many succeeded and their
latency, and the resident memory of gunicorn's processes at the end. Everything it starts is
stopped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "app"))

from support import FerretDB, Gunicorn, SlowClients, ferretdb_binary  # noqa: E402

WORKER_CLASSES = ("gevent", "gthread")


def resident_mib(pid: int) -> float:
    """Resident memory of a process and its children (gunicorn's master and workers)."""
    total_kib = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(fields["Pid"]) == pid or int(fields["PPid"]) == pid:
            total_kib += int(fields.get("VmRSS", "0 kB").split()[0])
    return total_kib / 1024


def run(uri: str, work: Path, worker_class: str, connections: int, seconds: float) -> dict:
    env = {
        "MONGODB_URI": uri,
        "MONGODB_DATABASE": "bench_slow",
        "LOG_LEVEL": "WARNING",
        "GUNICORN_WORKER_CLASS": worker_class,
    }
    latencies: list[float] = []
    failed = 0
    with (
        Gunicorn(env, work) as server,
        SlowClients(server.port, connections, interval=5.0) as slow,
    ):
        time.sleep(1.0)
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            began = time.perf_counter()
            try:
                ok = requests.get(f"{server.url}/", timeout=5).status_code == 200
            except requests.RequestException:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - began)
            else:
                failed += 1
            time.sleep(0.2)
        opened = slow.opened
        assert server.proc is not None
        rss = resident_mib(server.proc.pid)
    latencies.sort()
    return {
        "ok": len(latencies),
        "total": len(latencies) + failed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "max_ms": latencies[-1] * 1000 if latencies else None,
        "slow_opened": opened,
        "rss_mib": rss,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[60, 300])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-slow-"))
    rows = []
    with FerretDB(ferretdb_binary(), work / "data") as ferret:
        for worker_class in WORKER_CLASSES:
            for connections in args.connections:
                result = run(ferret.admin_uri, work, worker_class, connections, args.seconds)
                rows.append((worker_class, connections, result))
    print(f"\nbench-slow-clients: GET / every 0.2 s for {args.seconds:.0f} s beside slow clients")
    print(
        f"{'worker':<10}{'slow conns':>11}{'answered':>12}{'p50 ms':>10}{'max ms':>10}"
        f"{'RSS MiB':>10}"
    )
    for worker_class, connections, r in rows:
        p50 = f"{r['p50_ms']:.1f}" if r["p50_ms"] is not None else "-"
        top = f"{r['max_ms']:.1f}" if r["max_ms"] is not None else "-"
        answered = f"{r['ok']}/{r['total']}"
        print(
            f"{worker_class:<10}{connections:>11}{answered:>12}{p50:>10}{top:>10}"
            f"{r['rss_mib']:>10.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
