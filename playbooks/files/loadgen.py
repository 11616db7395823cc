"""Bounded HTTP load for the checks of playbooks/verify.yml, run inside the cluster as a Job.

Standard library only (it runs from the Flask image). Every mode runs for a fixed duration and
prints one JSON line with its totals last, which verify.yml reads from the Job's log.

  get    several processes x threads send GET requests as fast as they are answered (the
         autoscaling load: its aim is CPU, not a rate); every exception is a counted failure;
  paced  GET requests on a fixed schedule of --rate a second for --duration seconds. Every
         scheduled request is accounted for: answered (a 2xx with a JSON body), failed (any
         exception, an error status or a body that is not JSON, counted by kind with the
         second it was scheduled), or missed (the client fell so far behind that its turn
         came after the end). Latency is measured from the scheduled time, so a stalled
         service shows in the percentiles instead of slowing the schedule down;
  write  POST /data on the same schedule, each record tagged with a run marker and a sequence
         number; a failed write is retried (it may have been stored: that is how duplicates
         arise); afterwards every acknowledged id is read back and the listing is scanned for
         the marker, counting lost, changed and duplicated records (a lost one is read once
         more a moment later, and what answered the first 404 is kept); then the marker's
         records are deleted;
  slow   holds --slow-connections connections open for the whole run, half sending a request
         line and one header line a second without ever finishing, half sending complete
         headers and then a body one byte a second; a connection the server closes is opened
         again at once. The open ones are counted every second. Beside them, paced GET
         requests measure the ordinary traffic;
  listing
         stores --records large records, lists the collection with the largest page limit and
         follows next_cursor to the end, measuring each page's size on the wire and time, then
         deletes the records again;
  put, remove
         the backup check's known records: put stores --records records tagged --marker, each
         with content that follows from its sequence number; remove lists the collection,
         compares every record of the marker with that content, deletes them and lists again.
         Each prints a digest of the ids, creation times and sequence numbers it wrote or found,
         so that the two Jobs can tell the same records.

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
import select
import socket
import ssl
import statistics
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

# Seconds a request may take.
TIMEOUT = 5.0
# Seconds after the end of the schedule in which requests still due are sent; a turn that
# comes later is missed.
GRACE = 10.0
# Seconds the write mode spends reading its records back, and again deleting them.
READ_BACK_SECONDS = 120.0
# Seconds after which the write mode reads its lost records once more.
READ_AGAIN_SECONDS = 2.0


class BadBody(Exception):
    """A successful status whose body is not the JSON the service answers."""


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


def _classify(exc: BaseException) -> str:
    """A short name for why a request failed."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"http_{exc.code}"
    if isinstance(exc, BadBody):
        return "bad_body"
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ConnectionRefusedError):
        return "refused"
    if isinstance(reason, ConnectionResetError | http.client.RemoteDisconnected):
        return "reset"
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timeout"
    return type(reason).__name__


def _request(
    method: str, url: str, body: dict[str, Any] | None = None, timeout: float | None = None
) -> tuple[int, Any]:
    """One request; raises HTTPError on an error status and BadBody on a body not JSON."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout or TIMEOUT) as response:  # noqa: S310
        raw = response.read()
        status = response.status
    if not raw:
        return status, {}
    try:
        return status, json.loads(raw)
    except ValueError as exc:
        raise BadBody(f"{method} {url} answered {status} with {raw[:60]!r}") from exc


def _send_api_key() -> None:
    """Makes every urllib request carry `Authorization: Bearer $API_KEY`."""
    key = os.environ.get("API_KEY", "")
    if key:
        opener = urllib.request.build_opener()
        opener.addheaders = [("Authorization", f"Bearer {key}")]
        urllib.request.install_opener(opener)


def _run_threads(target: Callable[[], None], count: int) -> None:
    """Run ``target`` in ``count`` threads and wait for all of them."""
    pool = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def _latencies(latencies: list[float]) -> dict[str, float]:
    latencies.sort()
    return {
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round((latencies[-1] if latencies else 0.0) * 1000, 1),
    }


# --- get: as fast as answered -----------------------------------------------------------------


def _get_thread(
    url: str,
    origin: float,
    deadline: float,
    latencies: list[float],
    failures: list[tuple[float, str]],
) -> None:
    while time.time() < deadline:
        start = time.monotonic()
        try:
            _request("GET", url)
        except Exception as exc:  # every failure is counted by its kind
            failures.append((round(time.time() - origin, 1), _classify(exc)))
            time.sleep(0.05)
        else:
            latencies.append(time.monotonic() - start)


def _get_process(
    url: str, origin: float, duration: float, threads: int, queue: multiprocessing.Queue
) -> None:
    _send_api_key()
    latencies: list[float] = []
    failures: list[tuple[float, str]] = []
    _run_threads(lambda: _get_thread(url, origin, origin + duration, latencies, failures), threads)
    queue.put((latencies, failures))


def _failure_times(failures: list[tuple[float, str]]) -> dict[str, object]:
    """When failures happened, in seconds from the start: the first and last of each kind and
    the distinct seconds (up to 50), to set beside the times of the faults a check causes."""
    spans: dict[str, list[float]] = {}
    for second, kind in sorted(failures):
        spans.setdefault(kind, [second, second])[1] = second
    return {
        "error_spans": spans,
        "error_seconds": sorted({second for second, _ in failures})[:50],
    }


def run_get(args: argparse.Namespace) -> dict[str, object]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    # Wall-clock time, so that every process measures from the same instant.
    origin = time.time()
    workers = [
        multiprocessing.Process(
            target=_get_process, args=(args.url, origin, args.duration, args.threads, queue)
        )
        for _ in range(args.processes)
    ]
    for worker in workers:
        worker.start()
    latencies: list[float] = []
    failures: list[tuple[float, str]] = []
    for _ in workers:
        part, part_failures = queue.get()
        latencies.extend(part)
        failures.extend(part_failures)
    for worker in workers:
        worker.join()
    elapsed = time.time() - origin
    return {
        "seconds": round(elapsed, 1),
        "started_at": round(origin, 1),
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "errors": len(failures),
        "error_kinds": dict(Counter(kind for _, kind in failures)),
        **_failure_times(failures),
        **_latencies(latencies),
    }


# --- paced: every scheduled request answered, failed or missed --------------------------------


class Paced:
    """Runs ``action(index)`` for ``round(rate x duration)`` slots, one every 1/rate seconds,
    from a pool of threads. A slot whose action returns is answered, one whose action raises
    (anything) has failed, one whose turn comes after the end of the schedule plus ``grace``
    is missed: the three always add up to the slots scheduled. Latency runs from the slot's
    scheduled time."""

    def __init__(
        self,
        action: Callable[[int], object],
        rate: float,
        duration: float,
        threads: int,
        grace: float | None = None,
    ) -> None:
        self.action = action
        self.interval = 1.0 / rate
        self.scheduled = round(rate * duration)
        self.threads = threads
        self.started = time.monotonic()
        self.started_at = time.time()
        self.end = self.started + duration + (GRACE if grace is None else grace)
        self.lock = threading.Lock()
        self.next_index = 0
        self.latencies: list[float] = []
        self.answered_at: Counter[int] = Counter()
        self.failures: list[tuple[float, str]] = []
        self.missed = 0

    def _take(self) -> int | None:
        with self.lock:
            if self.next_index >= self.scheduled:
                return None
            self.next_index += 1
            return self.next_index - 1

    def _thread(self) -> None:
        while (index := self._take()) is not None:
            slot = self.started + index * self.interval
            delay = slot - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif time.monotonic() > self.end:
                with self.lock:
                    self.missed += 1
                continue
            try:
                self.action(index)
            except Exception as exc:  # every failure is counted by its kind
                with self.lock:
                    self.failures.append((round(slot - self.started, 1), _classify(exc)))
            else:
                done = time.monotonic()
                with self.lock:
                    self.latencies.append(done - slot)
                    self.answered_at[int(done - self.started)] += 1

    def run(self) -> Paced:
        _run_threads(self._thread, self.threads)
        return self

    def summary(self) -> dict[str, object]:
        elapsed = time.monotonic() - self.started
        kinds = Counter(kind for _, kind in self.failures)
        seconds = max(self.answered_at, default=-1) + 1
        return {
            "seconds": round(elapsed, 1),
            # When the schedule started (seconds since the epoch), for the times of faults.
            "started_at": round(self.started_at, 1),
            "rate": round(1.0 / self.interval, 3),
            "scheduled": self.scheduled,
            "requests": len(self.latencies),
            "errors": len(self.failures),
            "missed": self.missed,
            "rps": round(len(self.latencies) / elapsed, 1) if elapsed else 0.0,
            **_latencies(self.latencies),
            "error_kinds": dict(kinds),
            **_failure_times(self.failures),
            # Requests answered in each second of the run, from its start.
            "answered_per_second": [self.answered_at[second] for second in range(seconds)],
        }


def run_paced(args: argparse.Namespace) -> dict[str, object]:
    return (
        Paced(lambda _: _request("GET", args.url), args.rate, args.duration, args.threads)
        .run()
        .summary()
    )


# --- write: acknowledged writes survive -------------------------------------------------------


def _base(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _pages(base: str, deadline: float) -> list[dict[str, Any]]:
    """Every record of GET /data, page by page, each page retried until ``deadline``."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = "limit=500" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        _, page, _ = _patient("GET", f"{base}/data?{query}", deadline)
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def _delete_all(base: str, ids: Sequence[str], deadline: float) -> int:
    """Deletes ``ids`` (retrying until ``deadline``); returns how many the service deleted."""
    deleted = 0
    for record_id in ids:
        try:
            status, _, _ = _patient("DELETE", f"{base}/data/{record_id}", deadline)
        except Exception as exc:  # counted: the caller reports what is left
            print(f"DELETE /data/{record_id} failed: {_classify(exc)}", flush=True)
        else:
            deleted += status == 204
    return deleted


class Writer:
    """Writes tagged records on a schedule, retrying failures, and remembers what was acked."""

    def __init__(self, base: str, marker: str, deadline: float) -> None:
        self.base = base
        self.marker = marker
        self.deadline = deadline
        self.lock = threading.Lock()
        self.acked: dict[int, str] = {}
        self.retried = 0

    def write(self, sequence: int) -> None:
        body = {"loadgen": self.marker, "seq": sequence, "payload": "x" * 64}
        attempt = 0
        while True:
            try:
                status, answer = _request("POST", f"{self.base}/data", body)
                if status != 201:
                    raise BadBody(f"POST /data answered {status}")
            except Exception:
                if time.monotonic() >= self.deadline:
                    raise
                attempt += 1
                with self.lock:
                    self.retried += 1
                time.sleep(min(0.2 * attempt, 2.0))
                continue
            with self.lock:
                self.acked[sequence] = answer["id"]
            return


def _answer_of(exc: urllib.error.HTTPError) -> str:
    """What answered an error status: the status, the Server and Content-Type headers and the
    start of the body, to tell the service's own answer from another server's."""
    try:
        body = exc.read(160).decode("utf-8", "replace")
    except OSError as error:
        body = f"(unreadable: {type(error).__name__})"
    headers = exc.headers or {}
    return (
        f"{exc.code} server={headers.get('Server', '-')} type={headers.get('Content-Type', '-')}"
        f" body={' '.join(body.split())}"
    )


def _answers(url: str) -> bool:
    """Whether one GET of ``url`` is answered with a 2xx and a JSON body."""
    try:
        _request("GET", url)
    except Exception:  # any failure: not answered
        return False
    return True


def _read_back(base: str, acked: dict[int, str], marker: str, deadline: float) -> dict[str, Any]:
    """Reads every acknowledged record back by id, then lists the marker's records. A record
    answered 404 is lost, one with other content changed; one that could not be read (any other
    failure, after retries until ``deadline``) is unreadable, by kind. A listing that fails is
    named in ``listing_error``, and the counts already made stand. The lost records are read
    once more, ``read_again_seconds`` (READ_AGAIN_SECONDS) later: ``lost_found_later`` counts
    those found then (a window in which the service answered 404, not a loss), and
    ``first_404`` says what answered the first 404."""
    missing: list[str] = []
    changed = 0
    first_404 = ""
    unreadable: Counter[str] = Counter()
    for sequence, record_id in acked.items():
        try:
            _, record, _ = _patient("GET", f"{base}/data/{record_id}", deadline)
        except Exception as exc:  # counted: lost when 404, else unreadable by kind
            if isinstance(exc, urllib.error.HTTPError) and exc.code == 404:
                missing.append(record_id)
                first_404 = first_404 or _answer_of(exc)
            else:
                unreadable[_classify(exc)] += 1
            continue
        data = record.get("data", {})
        if data.get("loadgen") != marker or data.get("seq") != sequence:
            changed += 1
    found_later = 0
    if missing:
        time.sleep(READ_AGAIN_SECONDS)
        found_later = sum(_answers(f"{base}/data/{record_id}") for record_id in missing)
    counts: dict[str, Any] = {
        "lost": len(missing),
        "lost_found_later": found_later,
        "read_again_seconds": READ_AGAIN_SECONDS,
        "first_404": first_404,
        "changed": changed,
        "unreadable": sum(unreadable.values()),
        "unreadable_kinds": dict(unreadable),
        "listing_error": "",
        "stored": 0,
        "duplicates": 0,
        "ids": [],
    }
    try:
        stored = [item for item in _pages(base, deadline) if item["data"].get("loadgen") == marker]
    except Exception as exc:  # reported: the records read by id are counted above
        if isinstance(exc, urllib.error.HTTPError) and exc.code == 404 and not first_404:
            counts["first_404"] = _answer_of(exc)
        return {**counts, "listing_error": _classify(exc)}
    sequences = Counter(item["data"].get("seq") for item in stored)
    return {
        **counts,
        "stored": len(stored),
        "duplicates": sum(count - 1 for count in sequences.values() if count > 1),
        "ids": [item["id"] for item in stored],
    }


def run_write(args: argparse.Namespace) -> dict[str, object]:
    base = _base(args.url)
    writer = Writer(base, args.marker, time.monotonic() + args.duration + GRACE)
    paced = Paced(writer.write, args.rate, args.duration, args.threads).run()
    summary = paced.summary()
    counts = _read_back(base, writer.acked, args.marker, time.monotonic() + READ_BACK_SECONDS)
    ids = counts.pop("ids")
    deleted = _delete_all(base, ids, time.monotonic() + READ_BACK_SECONDS)
    # None when the listing fails: what is left is then unknown.
    remaining: int | None = None
    try:
        remaining = sum(
            item["data"].get("loadgen") == args.marker
            for item in _pages(base, time.monotonic() + READ_BACK_SECONDS / 2)
        )
    except Exception as exc:  # reported in listing_error
        counts["listing_error"] = counts["listing_error"] or _classify(exc)
    return {
        "seconds": summary["seconds"],
        "marker": args.marker,
        "rate": summary["rate"],
        "scheduled": summary["scheduled"],
        # Answered and failed as Paced counts them, for the accounting verify.yml checks.
        "requests": summary["requests"],
        "errors": summary["errors"],
        "acknowledged": len(writer.acked),
        "given_up": summary["errors"],
        "missed": summary["missed"],
        "retried": writer.retried,
        "p50_ms": summary["p50_ms"],
        "p99_ms": summary["p99_ms"],
        "answered_per_second": summary["answered_per_second"],
        **counts,
        "deleted": deleted,
        "remaining": remaining,
    }


# --- slow: slow clients beside ordinary traffic -----------------------------------------------


class SlowClients:
    """Holds ``count`` slow connections to host:port open until ``deadline``: the even ones
    never finish their headers, the odd ones send complete headers and then trickle their
    body. A connection the server closes (or answers, a 408) is opened again at once."""

    def __init__(self, url: str, count: int, deadline: float, trickle: float = 1.0) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self.count = count
        self.deadline = deadline
        self.trickle = trickle
        self.lock = threading.Lock()
        self.open = 0
        self.opened = 0
        self.closed_by_server = 0
        self.connect_failures: Counter[str] = Counter()
        self.samples: list[int] = []

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        return sock

    def _hold(self, sock: socket.socket, body: bool) -> bool:
        """Trickles on ``sock`` until the deadline; False when the server closed it first."""
        head = f"POST /data HTTP/1.1\r\nHost: {self.host}\r\n"
        key = os.environ.get("API_KEY", "")
        if key:
            head += f"Authorization: Bearer {key}\r\n"
        if body:
            head += "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        sock.sendall(head.encode())
        sent = 0
        while time.monotonic() < self.deadline:
            readable, _, _ = select.select([sock], [], [], self.trickle)
            if readable:
                return False
            sent += 1
            sock.sendall(b" " if body else f"X-Slow-{sent}: {sent}\r\n".encode())
        return True

    def _connection(self, number: int) -> None:
        opened = 0.0
        while time.monotonic() < self.deadline:
            # A connection the server closed within a second is opened again a second after it
            # was opened, not at once: slow clients, never a flood of connections.
            time.sleep(max(0.0, opened + 1.0 - time.monotonic()))
            opened = time.monotonic()
            try:
                sock = self._connect()
            except Exception as exc:  # counted, then tried again
                with self.lock:
                    self.connect_failures[_classify(exc)] += 1
                time.sleep(0.5)
                continue
            with self.lock:
                self.open += 1
                self.opened += 1
            try:
                held = self._hold(sock, body=number % 2 == 1)
            except OSError:
                held = False
            finally:
                with self.lock:
                    self.open -= 1
                sock.close()
            if not held:
                with self.lock:
                    self.closed_by_server += 1

    def _sample(self) -> None:
        while time.monotonic() < self.deadline:
            time.sleep(1.0)
            with self.lock:
                self.samples.append(self.open)

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._connection, args=(number,), daemon=True)
            for number in range(self.count)
        ]
        threads.append(threading.Thread(target=self._sample, daemon=True))
        for thread in threads:
            thread.start()
        return threads

    def summary(self, skip: int) -> dict[str, object]:
        """The counts, the samples of the first ``skip`` seconds left out of min and median."""
        held = self.samples[skip:] or [0]
        return {
            "slow_connections": self.count,
            "slow_open_min": min(held),
            "slow_open_median": statistics.median(held),
            "slow_open_samples": len(held),
            "slow_opened": self.opened,
            "slow_closed_by_server": self.closed_by_server,
            "slow_connect_failures": dict(self.connect_failures),
        }


def run_slow(args: argparse.Namespace) -> dict[str, object]:
    ramp = 2
    slow = SlowClients(args.url, args.slow_connections, time.monotonic() + args.duration + ramp)
    threads = slow.start()
    time.sleep(ramp)
    summary = run_paced(args)
    for thread in threads:
        thread.join()
    answered = summary["requests"]
    ratio = answered / summary["scheduled"] if summary["scheduled"] else 0.0
    return {**summary, "success_ratio": round(ratio, 4), **slow.summary(skip=ramp)}


# --- listing: pages bounded in bytes, every record once ---------------------------------------


def run_listing(args: argparse.Namespace) -> dict[str, object]:
    base = _base(args.url)
    payload = "y" * args.record_bytes
    started = time.monotonic()
    deadline = started + args.duration
    ids: list[str] = []
    store_failures: Counter[str] = Counter()
    for number in range(args.records):
        body = {"loadgen": args.marker, "seq": number, "blob": payload}
        try:
            _, answer, _ = _patient("POST", f"{base}/data", deadline, body)
            ids.append(answer["id"])
        except Exception as exc:  # counted: the check compares with --records
            store_failures[_classify(exc)] += 1
    pages = 0
    largest = slowest = 0.0
    first_page = 0
    seen: Counter[str] = Counter()
    cursor: str | None = None
    while True:
        query = "limit=500" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        page_start = time.monotonic()
        with urllib.request.urlopen(f"{base}/data?{query}", timeout=30) as response:  # noqa: S310
            length = response.headers.get("Content-Length")
            raw = response.read()
        slowest = max(slowest, time.monotonic() - page_start)
        page = json.loads(raw)
        pages += 1
        # The bytes on the wire: the declared length when there is one, never fewer than read.
        largest = max(largest, len(raw), int(length or 0))
        if pages == 1:
            first_page = len(page["items"])
        seen.update(
            item["id"] for item in page["items"] if item["data"].get("loadgen") == args.marker
        )
        cursor = page.get("next_cursor")
        if not cursor:
            break
    deleted = _delete_all(base, ids, time.monotonic() + 60)
    left = [
        item
        for item in _pages(base, time.monotonic() + 60)
        if item["data"].get("loadgen") == args.marker
    ]
    return {
        "seconds": round(time.monotonic() - started, 1),
        "records": len(ids),
        "store_failures": dict(store_failures),
        "record_bytes": args.record_bytes,
        "pages": pages,
        "first_page_items": first_page,
        "largest_page_bytes": int(largest),
        "slowest_page_ms": round(slowest * 1000, 1),
        "listed": sum(seen.values()),
        "listed_once": sum(1 for record_id in ids if seen[record_id] == 1),
        "missing": sum(1 for record_id in ids if seen[record_id] == 0),
        "duplicates": sum(count - 1 for count in seen.values() if count > 1),
        "deleted": deleted,
        "remaining": len(left),
    }


# --- put, remove: known records for the backup check -----------------------------------


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
) -> tuple[int, Any, int]:
    """A request retried on connection errors, 503 and 429 until ``deadline``; a GET or a
    DELETE (idempotent) also on any 5xx and on a body that is not JSON, which a service
    whose database has just restarted may answer for a moment.

    Returns (status, body, retries)."""
    retries = 0
    idempotent = method in ("GET", "DELETE")
    transient = (429, *range(500, 600)) if idempotent else (429, 503)
    while True:
        try:
            status, answer = _request(method, url, body)
            return status, answer, retries
        except urllib.error.HTTPError as exc:
            if exc.code not in transient or time.monotonic() >= deadline:
                raise
        except BadBody:
            if not idempotent or time.monotonic() >= deadline:
                raise
        except (urllib.error.URLError, OSError, http.client.HTTPException):
            if time.monotonic() >= deadline:
                raise
        retries += 1
        time.sleep(0.5)


def _marked(base: str, marker: str, deadline: float) -> tuple[int, list[dict[str, Any]]]:
    """Every page of GET /data: (records in all, the records of ``marker``)."""
    items = _pages(base, deadline)
    return len(items), [item for item in items if item["data"].get("backup_check") == marker]


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
            except Exception:  # counted: the check compares with --records
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
        "records": len(written),
        "given_up": counts["given_up"],
        "retried": counts["retried"],
        "digest": _digest(written),
    }


def run_remove(args: argparse.Namespace) -> dict[str, object]:
    base = _base(args.url)
    started = time.monotonic()
    deadline = started + args.duration
    total, marked = _marked(base, args.marker, deadline)
    found = _compare(args.marker, marked)
    deleted = _delete_all(base, [item["id"] for item in marked], deadline)
    _, left = _marked(base, args.marker, deadline)
    return {
        "seconds": round(time.monotonic() - started, 1),
        "marker": args.marker,
        "total": total,
        **found,
        "deleted": deleted,
        "remaining": len(left),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--mode",
        choices=["get", "paced", "write", "slow", "listing", "put", "remove"],
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
        "remove": run_remove,
    }
    summary = {"mode": args.mode, "url": args.url, **runners[args.mode](args)}
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
