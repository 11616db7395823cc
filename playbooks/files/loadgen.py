"""Bounded HTTP load for the checks of playbooks/verify.yml, run inside the cluster as a Job.

Standard library only (it runs from the Flask image). Every mode runs for a fixed duration and
prints one JSON line with its totals last, which verify.yml reads from the Job's log.

  get    several processes x threads send GET requests as fast as they are answered (the
         autoscaling load);
  paced  GET requests at a fixed total rate; each failure is counted by kind, with the second
         it happened (rolling restarts, pod deletions and scale-downs must cost none);
  write  POST /data at a fixed rate, each record tagged with a run marker and a sequence
         number; a failed write is retried (it may have been stored: that is how duplicates
         arise); afterwards every acknowledged id is read back and the listing is scanned for
         the marker, counting lost, changed and duplicated records;
  slow   opens many connections that send a request line and then one header line every few
         seconds, never finishing, while paced GET requests measure the ordinary traffic;
  listing
         stores --records large records, lists the collection with the largest page limit and
         follows next_cursor to the end, measuring each page's size and time, then deletes
         the records again;
  put, check, remove
         the backup check's known records: put stores --records records tagged --marker, each
         with content that follows from its sequence number; check lists the collection and
         compares every record of the marker with that content; remove does the same, then
         deletes them and lists again. Each prints a digest of the ids, creation times and
         sequence numbers it wrote or found, so that three Jobs can tell the same records.

Every request carries the API key in $API_KEY (the Job reads it from a Secret); over HTTPS
the service's CA comes from $SSL_CERT_FILE, which Python's default context trusts.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

TIMEOUT = 5.0


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


def _classify(exc: BaseException) -> str:
    """A short name for why a request failed."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"http_{exc.code}"
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ConnectionRefusedError):
        return "refused"
    if isinstance(reason, ConnectionResetError | http.client.RemoteDisconnected):
        return "reset"
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timeout"
    return type(reason).__name__


def _request(
    method: str, url: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
        raw = response.read()
        return response.status, json.loads(raw) if raw else {}


def _send_api_key() -> None:
    """Makes every urllib request carry `Authorization: Bearer $API_KEY`."""
    key = os.environ.get("API_KEY", "")
    if key:
        opener = urllib.request.build_opener()
        opener.addheaders = [("Authorization", f"Bearer {key}")]
        urllib.request.install_opener(opener)


def _run_threads(target: Callable[[], None], count: int) -> None:
    """Run ``target`` in ``count`` threads and wait for all of them."""
    pool = [threading.Thread(target=target) for _ in range(count)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def _summary(latencies: list[float], elapsed: float, **extra: object) -> dict[str, object]:
    latencies.sort()
    return {
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        **extra,
    }


# --- get: as fast as answered -----------------------------------------------------------------


def _get_thread(url: str, deadline: float, latencies: list[float], errors: Counter[str]) -> None:
    while time.monotonic() < deadline:
        start = time.monotonic()
        try:
            _request("GET", url)
            latencies.append(time.monotonic() - start)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            errors[_classify(exc)] += 1
            time.sleep(0.05)


def _get_process(url: str, duration: float, threads: int, queue: multiprocessing.Queue) -> None:
    deadline = time.monotonic() + duration
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    _run_threads(lambda: _get_thread(url, deadline, latencies, errors), threads)
    queue.put((latencies, dict(errors)))


def run_get(args: argparse.Namespace) -> dict[str, object]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(
            target=_get_process, args=(args.url, args.duration, args.threads, queue)
        )
        for _ in range(args.processes)
    ]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    for _ in workers:
        part, part_errors = queue.get()
        latencies.extend(part)
        errors.update(part_errors)
    for worker in workers:
        worker.join()
    return _summary(
        latencies,
        time.monotonic() - started,
        errors=sum(errors.values()),
        error_kinds=dict(errors),
    )


# --- paced: a fixed rate, failures with their second -------------------------------------------


class Paced:
    """Sends GET requests at ``rate`` per second from a pool of threads until ``deadline``."""

    def __init__(self, url: str, rate: float, deadline: float, threads: int) -> None:
        self.url = url
        self.interval = 1.0 / rate
        self.deadline = deadline
        self.threads = threads
        self.started = time.monotonic()
        self.next_slot = self.started
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.failures: list[tuple[float, str]] = []

    def _slot(self) -> float | None:
        with self.lock:
            slot = self.next_slot
            self.next_slot += self.interval
        return slot if slot < self.deadline else None

    def _thread(self) -> None:
        while (slot := self._slot()) is not None:
            delay = slot - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            start = time.monotonic()
            try:
                _request("GET", self.url)
                with self.lock:
                    self.latencies.append(time.monotonic() - start)
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                with self.lock:
                    self.failures.append((round(start - self.started, 1), _classify(exc)))

    def run(self) -> None:
        _run_threads(self._thread, self.threads)

    def summary(self) -> dict[str, object]:
        kinds = Counter(kind for _, kind in self.failures)
        return _summary(
            self.latencies,
            time.monotonic() - self.started,
            errors=len(self.failures),
            error_kinds=dict(kinds),
            error_seconds=sorted({second for second, _ in self.failures})[:50],
        )


def run_paced(args: argparse.Namespace) -> dict[str, object]:
    paced = Paced(args.url, args.rate, time.monotonic() + args.duration, args.threads)
    paced.run()
    return paced.summary()


# --- write: acknowledged writes survive -------------------------------------------------------


def _base(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Writer:
    """Writes tagged records at a fixed rate, retrying failures, and remembers what was acked."""

    def __init__(self, base: str, marker: str, rate: float, deadline: float, threads: int) -> None:
        self.base = base
        self.marker = marker
        self.interval = 1.0 / rate
        self.deadline = deadline
        self.threads = threads
        self.lock = threading.Lock()
        self.next_slot = time.monotonic()
        self.sequence = 0
        self.acked: dict[int, str] = {}
        self.failed_attempts = 0
        self.given_up = 0

    def _take(self) -> tuple[float, int] | None:
        with self.lock:
            slot = self.next_slot
            if slot >= self.deadline:
                return None
            self.next_slot += self.interval
            self.sequence += 1
            return slot, self.sequence

    def _write(self, sequence: int) -> None:
        body = {"loadgen": self.marker, "seq": sequence, "payload": "x" * 64}
        for attempt in range(30):
            try:
                status, answer = _request("POST", f"{self.base}/data", body)
            except (urllib.error.URLError, OSError, http.client.HTTPException):
                with self.lock:
                    self.failed_attempts += 1
                time.sleep(min(0.2 * (attempt + 1), 2.0))
                continue
            if status == 201:
                with self.lock:
                    self.acked[sequence] = answer["id"]
                return
        with self.lock:
            self.given_up += 1

    def _thread(self) -> None:
        while (taken := self._take()) is not None:
            slot, sequence = taken
            delay = slot - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._write(sequence)

    def run(self) -> None:
        _run_threads(self._thread, self.threads)


def _read_back(base: str, acked: dict[int, str], marker: str) -> dict[str, int]:
    missing = changed = 0
    for sequence, record_id in acked.items():
        for attempt in range(20):
            try:
                _, record = _request("GET", f"{base}/data/{record_id}")
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    missing += 1
                    break
                time.sleep(0.5 * (attempt + 1))
            except (urllib.error.URLError, OSError, http.client.HTTPException):
                time.sleep(0.5 * (attempt + 1))
            else:
                data = record.get("data", {})
                if data.get("loadgen") != marker or data.get("seq") != sequence:
                    changed += 1
                break
        else:
            missing += 1
    stored: Counter[int] = Counter()
    cursor: str | None = None
    while True:
        query = "limit=500" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        _, page = _request("GET", f"{base}/data?{query}")
        for item in page["items"]:
            if item["data"].get("loadgen") == marker:
                stored[item["data"]["seq"]] += 1
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return {
        "lost": missing,
        "changed": changed,
        "stored": sum(stored.values()),
        "duplicates": sum(count - 1 for count in stored.values() if count > 1),
    }


def run_write(args: argparse.Namespace) -> dict[str, object]:
    started = time.monotonic()
    writer = Writer(_base(args.url), args.marker, args.rate, started + args.duration, args.threads)
    writer.run()
    elapsed = time.monotonic() - started
    counts = _read_back(_base(args.url), writer.acked, args.marker)
    return {
        "seconds": round(elapsed, 1),
        "marker": args.marker,
        "attempted": writer.sequence,
        "acknowledged": len(writer.acked),
        "given_up": writer.given_up,
        "retried": writer.failed_attempts,
        **counts,
    }


# --- slow: slow clients beside ordinary traffic -----------------------------------------------


def _slow_connection(host: str, port: int, deadline: float, opened: list[int]) -> None:
    try:
        sock = socket.create_connection((host, port), timeout=TIMEOUT)
    except OSError:
        return
    with sock:
        try:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n".encode())
            opened.append(1)
            header = 0
            while time.monotonic() < deadline:
                time.sleep(3)
                header += 1
                sock.sendall(f"X-Slow-{header}: {header}\r\n".encode())
        except OSError:
            return


def run_slow(args: argparse.Namespace) -> dict[str, object]:
    parts = urllib.parse.urlsplit(args.url)
    host, port = parts.hostname or "localhost", parts.port or 80
    deadline = time.monotonic() + args.duration
    opened: list[int] = []
    slow = [
        threading.Thread(target=_slow_connection, args=(host, port, deadline, opened), daemon=True)
        for _ in range(args.slow_connections)
    ]
    for thread in slow:
        thread.start()
    time.sleep(2)
    paced = Paced(args.url, args.rate, deadline, args.threads)
    paced.run()
    summary = paced.summary()
    summary["slow_connections_open"] = len(opened)
    return summary


# --- listing: pages bounded in bytes, every record once ---------------------------------------


def run_listing(args: argparse.Namespace) -> dict[str, object]:
    base = _base(args.url)
    payload = "y" * args.record_bytes
    ids: list[str] = []
    started = time.monotonic()
    for number in range(args.records):
        _, answer = _request(
            "POST", f"{base}/data", {"loadgen": args.marker, "seq": number, "blob": payload}
        )
        ids.append(answer["id"])
    pages = page_bytes = 0
    largest = slowest = 0.0
    first_page = 0
    seen: Counter[str] = Counter()
    cursor: str | None = None
    while True:
        query = "limit=500" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        page_start = time.monotonic()
        with urllib.request.urlopen(f"{base}/data?{query}", timeout=30) as response:  # noqa: S310
            raw = response.read()
        slowest = max(slowest, time.monotonic() - page_start)
        page = json.loads(raw)
        pages += 1
        page_bytes = len(raw)
        largest = max(largest, page_bytes)
        marked = [item for item in page["items"] if item["data"].get("loadgen") == args.marker]
        if pages == 1:
            first_page = len(page["items"])
        seen.update(item["id"] for item in marked)
        cursor = page.get("next_cursor")
        if not cursor:
            break
    for record_id in ids:
        request = urllib.request.Request(f"{base}/data/{record_id}", method="DELETE")  # noqa: S310
        with urllib.request.urlopen(request, timeout=TIMEOUT):  # noqa: S310
            pass
    return {
        "seconds": round(time.monotonic() - started, 1),
        "records": len(ids),
        "record_bytes": args.record_bytes,
        "pages": pages,
        "first_page_items": first_page,
        "largest_page_bytes": int(largest),
        "slowest_page_ms": round(slowest * 1000, 1),
        "listed_once": sum(1 for record_id in ids if seen[record_id] == 1),
        "missing": sum(1 for record_id in ids if seen[record_id] == 0),
        "duplicates": sum(count - 1 for count in seen.values() if count > 1),
    }


# --- put, check, remove: known records for the backup check -----------------------------------


def _known_record(marker: str, sequence: int) -> dict[str, Any]:
    """The content of record ``sequence`` of a known set: text, every kind of number, nesting."""
    return {
        "backup_check": marker,
        "seq": sequence,
        "text": f"record {sequence} \u00e9\u4e2d\U0001f600",
        "ratio": sequence / 7,
        "big": 2**62 + sequence,
        "even": sequence % 2 == 0,
        "none": None,
        "tags": [sequence, str(sequence), {"k": sequence}],
        "nested": {"a": {"b": {"c": [sequence]}}},
    }


def _digest(entries: list[tuple[str, str, object]]) -> str:
    lines = sorted(
        f"{record_id} {created_at} {sequence}" for record_id, created_at, sequence in entries
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _patient(
    method: str, url: str, deadline: float, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any], int]:
    """A request retried on connection errors and 503 until ``deadline``.

    Returns (status, body, retries)."""
    retries = 0
    while True:
        try:
            status, answer = _request(method, url, body)
            return status, answer, retries
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or time.monotonic() >= deadline:
                raise
        except (urllib.error.URLError, OSError, http.client.HTTPException):
            if time.monotonic() >= deadline:
                raise
        retries += 1
        time.sleep(0.5)


def _scan(base: str, marker: str, deadline: float) -> tuple[int, list[dict[str, Any]], int]:
    """Every page of GET /data: (records in all, the records of ``marker``, requests)."""
    total = requests = 0
    marked: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = "limit=500" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        _, page, _ = _patient("GET", f"{base}/data?{query}", deadline)
        requests += 1
        total += len(page["items"])
        marked.extend(item for item in page["items"] if item["data"].get("backup_check") == marker)
        cursor = page.get("next_cursor")
        if not cursor:
            return total, marked, requests


def _compare(marker: str, marked: list[dict[str, Any]]) -> dict[str, object]:
    sequences = Counter(item["data"].get("seq") for item in marked)
    return {
        "found": len(marked),
        "changed": sum(
            1 for item in marked if item["data"] != _known_record(marker, item["data"].get("seq"))
        ),
        "duplicates": sum(count - 1 for count in sequences.values() if count > 1),
        "digest": _digest(
            [(item["id"], item["created_at"], item["data"].get("seq")) for item in marked]
        ),
    }


def run_put(args: argparse.Namespace) -> dict[str, object]:
    base = _base(args.url)
    started = time.monotonic()
    deadline = started + args.duration
    lock = threading.Lock()
    pending = list(range(args.records))
    written: list[tuple[str, str, object]] = []
    counts = Counter[str]()

    def store() -> None:
        while True:
            with lock:
                if not pending:
                    return
                sequence = pending.pop()
            try:
                _, answer, retries = _patient(
                    "POST", f"{base}/data", deadline, _known_record(args.marker, sequence)
                )
            except (urllib.error.URLError, OSError, http.client.HTTPException):
                with lock:
                    counts["given_up"] += 1
                continue
            with lock:
                counts["retried"] += retries
                written.append((answer["id"], answer["created_at"], sequence))

    _run_threads(store, args.threads)
    return {
        "seconds": round(time.monotonic() - started, 1),
        "marker": args.marker,
        "requests": len(written) + counts["given_up"] + counts["retried"],
        "records": len(written),
        "given_up": counts["given_up"],
        "retried": counts["retried"],
        "digest": _digest(written),
    }


def run_check(args: argparse.Namespace) -> dict[str, object]:
    started = time.monotonic()
    total, marked, requests = _scan(_base(args.url), args.marker, started + args.duration)
    return {
        "seconds": round(time.monotonic() - started, 1),
        "marker": args.marker,
        "requests": requests,
        "total": total,
        **_compare(args.marker, marked),
    }


def run_remove(args: argparse.Namespace) -> dict[str, object]:
    base = _base(args.url)
    started = time.monotonic()
    deadline = started + args.duration
    total, marked, requests = _scan(base, args.marker, deadline)
    found = _compare(args.marker, marked)
    deleted = 0
    for item in marked:
        try:
            status, _, retries = _patient("DELETE", f"{base}/data/{item['id']}", deadline)
        except urllib.error.HTTPError as exc:
            status, retries = exc.code, 0
        requests += 1 + retries
        deleted += status == 204
    _, left, scanned = _scan(base, args.marker, deadline)
    return {
        "seconds": round(time.monotonic() - started, 1),
        "marker": args.marker,
        "requests": requests + scanned,
        "total": total,
        **found,
        "deleted": deleted,
        "remaining": len(left),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--mode",
        choices=["get", "paced", "write", "slow", "listing", "put", "check", "remove"],
        default="get",
    )
    parser.add_argument("--url", required=True, help="URL to request (write: the service's base)")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument("--processes", type=int, default=2, help="worker processes (get)")
    parser.add_argument("--threads", type=int, default=8, help="threads per process")
    parser.add_argument("--rate", type=float, default=90.0, help="requests a second (paced, ...)")
    parser.add_argument("--marker", default="verify", help="tag of the records (write)")
    parser.add_argument("--slow-connections", type=int, default=200, help="slow clients (slow)")
    parser.add_argument("--records", type=int, default=40, help="records to store (listing, put)")
    parser.add_argument("--record-bytes", type=int, default=60000, help="record size (listing)")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 3600:
        parser.error("--duration must be between 1 and 3600 seconds")
    if not 1 <= args.processes <= 64 or not 1 <= args.threads <= 256:
        parser.error("--processes must be 1..64 and --threads 1..256")
    if not 0.1 <= args.rate <= 5000 or not 0 <= args.slow_connections <= 2000:
        parser.error("--rate must be 0.1..5000 and --slow-connections 0..2000")
    _send_api_key()
    runners = {
        "get": run_get,
        "paced": run_paced,
        "write": run_write,
        "slow": run_slow,
        "listing": run_listing,
        "put": run_put,
        "check": run_check,
        "remove": run_remove,
    }
    summary = {"mode": args.mode, "url": args.url, **runners[args.mode](args)}
    print(json.dumps(summary), flush=True)
    done = summary.get("requests", summary.get("acknowledged", summary.get("records", 0)))
    return 0 if done else 1


if __name__ == "__main__":
    raise SystemExit(main())
