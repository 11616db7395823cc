"""Bounded HTTP load generator for the autoscaling check of playbooks/verify.yml.

Runs inside the cluster as a Job, from the Flask image (standard library only): several
processes, each with several threads, send GET requests to one URL until a fixed duration
has passed, then print one JSON line with the totals and latency percentiles.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence


def _worker_thread(url: str, deadline: float, latencies: list[float], errors: list[int]) -> None:
    while time.monotonic() < deadline:
        start = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
                response.read()
            latencies.append(time.monotonic() - start)
        except (urllib.error.URLError, OSError):
            errors.append(1)
            time.sleep(0.05)


def _worker_process(url: str, duration: float, threads: int, queue: multiprocessing.Queue) -> None:
    deadline = time.monotonic() + duration
    latencies: list[float] = []
    errors: list[int] = []
    pool = [
        threading.Thread(target=_worker_thread, args=(url, deadline, latencies, errors))
        for _ in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    queue.put((latencies, len(errors)))


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="URL to request")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per process")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 3600:
        parser.error("--duration must be between 1 and 3600 seconds")
    if not 1 <= args.processes <= 64 or not 1 <= args.threads <= 256:
        parser.error("--processes must be 1..64 and --threads 1..256")

    queue: multiprocessing.Queue = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(
            target=_worker_process, args=(args.url, args.duration, args.threads, queue)
        )
        for _ in range(args.processes)
    ]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    latencies: list[float] = []
    errors = 0
    for _ in workers:
        part, part_errors = queue.get()
        latencies.extend(part)
        errors += part_errors
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    print(
        json.dumps(
            {
                "url": args.url,
                "seconds": round(elapsed, 1),
                "requests": len(latencies),
                "errors": errors,
                "rps": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
                "p50_ms": round(_percentile(latencies, 0.50) * 1000, 1),
                "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
            }
        )
    )
    return 0 if latencies else 1


if __name__ == "__main__":
    raise SystemExit(main())
