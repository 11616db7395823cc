"""Benchmark: ordinary requests beside clients that stall, for each gunicorn worker class.

    python bench/bench_slow_clients.py [--kinds headers bodies unread] [--connections N ...]
        [--seconds 30] [--worker-classes gevent gthread]

For each worker class (gevent, the default, and gthread), each kind of stalled client and
each number of them, starts FerretDB and the service with its production gunicorn settings
and default deadlines (APP_BODY_TIMEOUT_SECONDS and APP_WRITE_TIMEOUT_SECONDS, 10 s), opens
that many stalled connections (one the server ends is opened again, from a process of their
own) and meanwhile sends ordinary requests one after the other, each on a new connection with
a 10-second timeout (POST /data, GET of that record, GET /healthz, GET /). The kinds:

- headers: a request line, then one header line every 5 seconds, never the end of the headers;
- bodies: the headers of a POST /data announcing 64 KiB and one byte of it, then nothing;
- unread: a GET of a 1 MiB page of records (stored for it, ahead of those the ordinary client
  writes) with a 4 KiB receive buffer, never read.

Prints, for each run, how many ordinary requests succeeded and their latency, how many stalled
connections the server cut off (408 for a body, a reset for an unread response) and how long
the deadline held them, and the peak resident memory of gunicorn's processes. Everything it
starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "app"))

from support import (  # noqa: E402
    READ_KEY,
    WRITE_KEY,
    FerretDB,
    Gunicorn,
    OrdinaryClient,
    PeakMemory,
    SlowClients,
    Stallers,
    ferretdb_binary,
    raise_open_files,
    seed_page,
    stalled_body_request,
    unread_listing_request,
)

WORKER_CLASSES = ("gevent", "gthread")
KINDS = ("headers", "bodies", "unread")
DEADLINE = 10  # the service's default deadlines


def stalled(kind: str, url: str, port: int, count: int) -> AbstractContextManager[object]:
    if kind == "headers":
        return SlowClients(port, count, interval=5.0)
    if kind == "bodies":
        return Stallers(port, count, stalled_body_request(WRITE_KEY))
    return Stallers(port, count, unread_listing_request(READ_KEY, seed_page(url)), reads=False)


@dataclass
class Row:
    worker_class: str
    kind: str
    count: int
    ordinary: dict[str, Any]
    cut: int
    held: dict[str, float] | None
    peak_rss_mib: float
    worker_timeouts: int


def run(uri: str, work: Path, worker_class: str, kind: str, count: int, seconds: float) -> Row:
    env = {
        "MONGODB_URI": uri,
        "MONGODB_DATABASE": f"bench_slow_{kind}",
        "LOG_LEVEL": "WARNING",
        "GUNICORN_WORKER_CLASS": worker_class,
    }
    with Gunicorn(env, work) as server:
        assert server.proc is not None
        with (
            PeakMemory(server.proc.pid) as memory,
            stalled(kind, server.url, server.port, count) as clients,
            OrdinaryClient(server.url) as ordinary,
        ):
            time.sleep(seconds)
        logs = server.logs()
    if isinstance(clients, Stallers):
        figures = clients.summary(DEADLINE)
        cut, held = int(figures["cut"]), figures["cut_held_s"]  # type: ignore[call-overload]
    else:
        cut, held = clients.closed_by_server, None  # type: ignore[attr-defined]
    return Row(
        worker_class,
        kind,
        count,
        ordinary.summary(),
        cut,
        held,  # type: ignore[arg-type]
        memory.peak,
        logs.count("WORKER TIMEOUT"),
    )


def _ms(spread: dict[str, float] | None, key: str) -> str:
    return f"{spread[key] * 1000:.0f}" if spread else "-"


def _s(spread: dict[str, float] | None, key: str) -> str:
    return f"{spread[key]:.1f}" if spread else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--connections", type=int, nargs="+", default=[300, 3000])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--worker-classes", nargs="+", choices=WORKER_CLASSES, default=WORKER_CLASSES
    )
    args = parser.parse_args()
    raise_open_files(max(args.connections) + 1000)
    work = Path(tempfile.mkdtemp(prefix="bench-slow-"))
    rows = []
    with FerretDB(ferretdb_binary(), work / "data") as ferret:
        for worker_class in args.worker_classes:
            for kind in args.kinds:
                for count in args.connections:
                    rows.append(
                        run(ferret.admin_uri, work, worker_class, kind, count, args.seconds)
                    )
    print(
        f"\nbench-slow-clients: ordinary requests for {args.seconds:.0f} s beside stalled "
        f"clients (deadlines {DEADLINE} s)"
    )
    print(
        f"{'worker':<8}{'kind':<9}{'stalled':>8}{'ordinary ok':>13}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'max ms':>8}{'cut':>7}{'held p50 s':>11}{'held max s':>11}{'RSS MiB':>9}"
    )
    for row in rows:
        latency = row.ordinary["latency_s"]
        answered = f"{row.ordinary['ok']}/{row.ordinary['sent']}"
        print(
            f"{row.worker_class:<8}{row.kind:<9}{row.count:>8}{answered:>13}"
            f"{_ms(latency, 'p50'):>8}{_ms(latency, 'p99'):>8}{_ms(latency, 'max'):>8}"
            f"{row.cut:>7}{_s(row.held, 'p50'):>11}{_s(row.held, 'max'):>11}"
            f"{row.peak_rss_mib:>9.0f}"
        )
        if row.worker_timeouts:
            print(f"  {row.worker_timeouts} workers killed by gunicorn's timeout")
    return 0


if __name__ == "__main__":
    sys.exit(main())
