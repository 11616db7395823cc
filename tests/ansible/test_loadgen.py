"""playbooks/files/loadgen.py, the load generator behind verify.yml's checks, against a real
HTTP server on this host: every scheduled request is accounted for (answered, failed for any
reason, or missed), latency runs from the schedule, acknowledged writes are read back, and
slow clients are held open for the whole run.

The server's timings only ever make the client slower, so the figures asserted are lower
bounds and counts, never upper bounds on time.
"""

import argparse
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from ansible_support import REPO

sys.path.insert(0, str(REPO / "playbooks" / "files"))
import loadgen


@dataclass
class Store:
    """The records the server holds, and every how-many-th acknowledged one it forgets."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    forget_every: int = 0
    # Once set, GET /data answers this status, and GET /data/<id> of a record held the other.
    listing_status: int = 200
    record_status: int = 200
    # The next this-many GET /data/<id> are answered 404 by "another server" (a page that is
    # not the service's), whether the record is held or not.
    foreign_404s: int = 0
    acknowledged: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(BaseHTTPRequestHandler):
    """A small service: /ok, /html (a 2xx that is not JSON), /error, /stall, /drop, /late,
    and /data with POST, GET (a listing with a cursor, or one record) and DELETE."""

    # The server closes a connection whose request does not arrive within this many seconds.
    timeout = 1.0
    protocol_version = "HTTP/1.1"
    store: Store

    def log_message(self, format: str, *args: object) -> None:
        return

    def _answer(self, status: int, body: object, content_type: str = "application/json") -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/ok":
            self._answer(200, {"message": "ok"})
        elif path == "/html":
            self._answer(200, b"<html>maintenance</html>", "text/html")
        elif path == "/error":
            self._answer(500, {"code": "internal"})
        elif path == "/stall":
            time.sleep(3)
            self._answer(200, {"message": "late"})
        elif path == "/late":
            time.sleep(0.1)
            self._answer(200, {"message": "ok"})
        elif path == "/drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif path == "/data" and self.store.listing_status != 200:
            self._answer(self.store.listing_status, {"code": "failed"})
        elif path == "/data":
            self._list(query)
        elif path.startswith("/data/") and self._foreign_404():
            self._answer(404, b"<html>404 page not found</html>", "text/html")
        elif path.startswith("/data/"):
            record = self.store.records.get(path.removeprefix("/data/"))
            if record is None:
                self._answer(404, {"code": "not_found"})
            else:
                self._answer(self.store.record_status, record)
        else:
            self._answer(404, {"code": "not_found"})

    def _foreign_404(self) -> bool:
        with self.store.lock:
            if self.store.foreign_404s <= 0:
                return False
            self.store.foreign_404s -= 1
            return True

    def _list(self, query: str) -> None:
        params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
        with self.store.lock:
            ordered = sorted(self.store.records)
        start = int(params.get("cursor", 0))
        limit = int(params.get("limit", 50))
        page = [self.store.records[key] for key in ordered[start : start + limit]]
        following = start + limit if start + limit < len(ordered) else None
        self._answer(
            200, {"items": page, "next_cursor": str(following) if following is not None else None}
        )

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        try:
            data = json.loads(self.rfile.read(length))
        except (TimeoutError, ValueError):
            # A body that did not arrive in time, as the service answers it.
            self.close_connection = True
            self._answer(408, {"code": "request_timeout"})
            return
        record = {"id": uuid.uuid4().hex, "created_at": time.time(), "data": data}
        with self.store.lock:
            self.store.acknowledged += 1
            forget = (
                self.store.forget_every and self.store.acknowledged % self.store.forget_every == 0
            )
            if not forget:
                self.store.records[record["id"]] = record
        self._answer(201, record)

    def do_DELETE(self) -> None:
        with self.store.lock:
            found = self.store.records.pop(self.path.removeprefix("/data/"), None)
        if found is None:
            self._answer(404, {"code": "not_found"})
        else:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()


class QueuedServer(ThreadingHTTPServer):
    # A listen queue like a real server's: the standard library's 5 drops the SYNs of the slow
    # clients, which all reconnect in the same instant, and they then time out connecting.
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hung up before its answer was written (the tests' timeouts do that on
        # purpose) is what these tests expect; anything else still prints its traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class Server:
    url: str
    store: Store


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    store = Store()
    handler = type("BoundHandler", (Handler,), {"store": store})
    httpd = QueuedServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(loadgen, "TIMEOUT", 0.5)
    yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", store)
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def paced(url: str, rate: float, duration: float, threads: int = 4, grace: float = 5.0) -> dict:
    return (
        loadgen.Paced(lambda _: loadgen._request("GET", url), rate, duration, threads, grace)
        .run()
        .summary()
    )


def accounted(summary: dict) -> int:
    return summary["requests"] + summary["errors"] + summary["missed"]


def test_every_request_of_the_schedule_is_answered_by_a_healthy_server(server: Server) -> None:
    summary = paced(f"{server.url}/ok", rate=40, duration=1)
    assert summary["scheduled"] == 40
    assert summary["requests"] == 40
    assert summary["errors"] == summary["missed"] == 0
    assert sum(summary["answered_per_second"]) == 40


@pytest.mark.parametrize(
    ("path", "kind"),
    [("html", "bad_body"), ("error", "http_500"), ("drop", "reset"), ("nowhere", "http_404")],
)
def test_a_failed_request_is_counted_by_its_kind(server: Server, path: str, kind: str) -> None:
    summary = paced(f"{server.url}/{path}", rate=10, duration=2)
    assert summary["requests"] == 0
    assert summary["errors"] == 20
    assert summary["error_kinds"] == {kind: 20}
    # The seconds of the schedule the failures were due at, from the first slot to the last.
    assert summary["error_seconds"][0] == 0.0
    assert summary["error_seconds"][-1] == 1.9


def test_the_get_load_counts_failures_with_their_times(server: Server) -> None:
    args = argparse.Namespace(url=f"{server.url}/error", duration=1.0, processes=2, threads=2)
    summary = loadgen.run_get(args)
    assert summary["requests"] == 0
    assert summary["errors"] > 4
    assert summary["error_kinds"] == {"http_500": summary["errors"]}
    first, last = summary["error_spans"]["http_500"]
    assert 0.0 <= first <= last <= 1.5
    assert summary["error_seconds"][0] == first


def test_an_exception_of_any_type_is_a_failure_not_a_lost_request() -> None:
    def action(index: int) -> None:
        if index % 2:
            raise KeyError(index)

    summary = loadgen.Paced(action, rate=50, duration=1, threads=2).run().summary()
    assert summary["requests"] == 25
    assert summary["error_kinds"] == {"KeyError": 25}
    assert accounted(summary) == 50


def test_a_stalled_server_gives_failures_and_missed_requests_not_fewer(server: Server) -> None:
    summary = paced(f"{server.url}/stall", rate=20, duration=1, threads=2, grace=0.5)
    assert summary["scheduled"] == 20
    assert summary["requests"] == 0
    assert summary["error_kinds"].get("timeout", 0) >= 2
    assert summary["missed"] > 0
    assert accounted(summary) == 20


def test_latency_runs_from_the_scheduled_time(server: Server) -> None:
    # One thread, 20 slots 50 ms apart, each answered after at least 100 ms: the last one
    # is sent at least a second after its slot, and its latency says so.
    summary = paced(f"{server.url}/late", rate=20, duration=1, threads=1, grace=10)
    assert summary["requests"] == 20
    assert summary["max_ms"] >= 1000
    assert summary["p99_ms"] >= 1000
    assert summary["p50_ms"] >= 500


def write(server: Server, capsys: pytest.CaptureFixture[str], rate: int, marker: str) -> dict:
    """Runs the write mode for a second; returns the summary it prints."""
    argv = ["--mode=write", f"--url={server.url}/", "--duration=1", f"--rate={rate}"]
    assert loadgen.main([*argv, "--threads=4", f"--marker={marker}"]) == 0
    return json.loads(capsys.readouterr().out.splitlines()[-1])


def test_writes_are_acknowledged_read_back_and_deleted(server: Server, capsys) -> None:
    summary = write(server, capsys, rate=30, marker="run-1")
    assert summary["scheduled"] == 30
    assert summary["acknowledged"] == 30
    assert summary["given_up"] == summary["missed"] == 0
    assert summary["lost"] == summary["changed"] == summary["duplicates"] == 0
    assert summary["stored"] == summary["deleted"] == 30
    assert summary["remaining"] == 0
    assert summary["unreadable"] == 0
    assert summary["listing_error"] == ""
    assert server.store.records == {}


def test_an_acknowledged_write_the_server_forgot_is_counted_lost(server: Server, capsys) -> None:
    server.store.forget_every = 5
    summary = write(server, capsys, rate=30, marker="run-2")
    assert summary["acknowledged"] == 30
    assert summary["lost"] == 6
    # Read again, they are still missing; the first 404 was the service's own.
    assert summary["lost_found_later"] == 0
    assert summary["first_404"].startswith("404 ")
    assert "type=application/json" in summary["first_404"]
    assert '{"code": "not_found"}' in summary["first_404"]
    assert summary["stored"] == summary["deleted"] == 24


def test_records_answered_404_for_a_moment_are_told_from_lost_ones(
    server: Server, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Something other than the service answers the first reads 404: the records are counted
    # lost (a client saw them missing), found by the read a moment later, and what answered
    # is named.
    monkeypatch.setattr(loadgen, "READ_AGAIN_SECONDS", 0.1)
    server.store.foreign_404s = 7
    summary = write(server, capsys, rate=30, marker="run-6")
    assert summary["acknowledged"] == 30
    assert summary["lost"] == summary["lost_found_later"] == 7
    assert summary["read_again_seconds"] == 0.1
    assert summary["first_404"].startswith("404 server=BaseHTTP/")
    assert summary["first_404"].endswith(" type=text/html body=<html>404 page not found</html>")
    assert summary["stored"] == summary["deleted"] == 30
    assert summary["listing_error"] == ""


def test_a_database_that_lost_everything_is_reported_not_a_crash(
    server: Server, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every acknowledged write forgotten, and the listing refused (as a service whose database
    # restarted empty may answer): the summary still comes, with every write lost.
    server.store.forget_every = 1
    server.store.listing_status = 404
    summary = write(server, capsys, rate=10, marker="run-4")
    assert summary["acknowledged"] == 10
    assert summary["lost"] == 10
    assert summary["lost_found_later"] == 0
    assert summary["listing_error"] == "http_404"
    assert summary["stored"] == summary["deleted"] == 0
    assert summary["remaining"] is None


def test_a_record_that_cannot_be_read_back_is_unreadable_by_kind(
    server: Server, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loadgen, "READ_BACK_SECONDS", 1.0)
    server.store.record_status = 503
    summary = write(server, capsys, rate=5, marker="run-5")
    assert summary["acknowledged"] == 5
    assert summary["unreadable"] == 5
    assert summary["unreadable_kinds"] == {"http_503": 5}
    assert summary["lost"] == summary["changed"] == 0
    assert summary["listing_error"] == ""
    assert summary["deleted"] == 5


def test_records_of_other_clients_are_left_alone(server: Server, capsys) -> None:
    server.store.records["theirs"] = {"id": "theirs", "created_at": 0, "data": {"loadgen": "x"}}
    summary = write(server, capsys, rate=10, marker="run-3")
    assert summary["deleted"] == 10
    assert list(server.store.records) == ["theirs"]


def test_slow_clients_are_reopened_and_held_for_the_whole_run(server: Server) -> None:
    # The server closes a connection whose headers or body do not arrive within a second.
    slow = loadgen.SlowClients(f"{server.url}/", count=10, deadline=time.monotonic() + 5)
    for thread in slow.start():
        thread.join()
    summary = slow.summary(skip=1)
    assert summary["slow_closed_by_server"] >= 10
    assert summary["slow_opened"] >= 20
    assert summary["slow_open_samples"] >= 3
    assert summary["slow_open_median"] >= 9
    assert summary["slow_connect_failures"] == {}


def test_ordinary_traffic_beside_slow_clients_is_accounted_for(server: Server, capsys) -> None:
    argv = ["--mode=slow", f"--url={server.url}/ok", "--duration=3", "--rate=10"]
    assert loadgen.main([*argv, "--slow-connections=6"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["scheduled"] == 30
    assert summary["requests"] == 30
    assert summary["success_ratio"] == 1
    assert summary["slow_connections"] == 6
    assert summary["slow_open_median"] >= 5
    assert summary["slow_closed_by_server"] >= 6


def test_slow_clients_that_cannot_connect_are_counted(server: Server) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    slow = loadgen.SlowClients(f"http://127.0.0.1:{port}/", count=2, deadline=time.monotonic() + 2)
    for thread in slow.start():
        thread.join()
    summary = slow.summary(skip=0)
    assert summary["slow_open_median"] == 0
    assert summary["slow_connect_failures"]["refused"] >= 2


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("--rate=0", "--rate must be"),
        ("--duration=0", "--duration must be"),
        ("--threads=0", "--threads 1..256"),
        ("--slow-connections=5000", "--slow-connections 0..2000"),
    ],
)
def test_bad_arguments_are_refused_with_one_sentence(argument: str, message: str, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        loadgen.main(["--url=http://127.0.0.1:1/", argument])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
