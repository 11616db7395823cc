"""The process: validated configuration at start-up, worker count, graceful shutdown."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from conftest import service_env
from flaskapp.config import ConfigError, load_settings
from support import WRITE_KEY, WRITER, Gunicorn, SlowClients, throwaway_pki


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MONGODB_PORT": "abc"}, "MONGODB_PORT must be an integer"),
        ({"MONGODB_PORT": "70000"}, "MONGODB_PORT must be between 1 and 65535"),
        ({"APP_MAX_BODY_BYTES": "-5"}, "APP_MAX_BODY_BYTES must be between"),
        ({"GUNICORN_WORKERS": "0"}, "GUNICORN_WORKERS must be between 1 and 32"),
        ({"GUNICORN_THREADS": "many"}, "GUNICORN_THREADS must be an integer"),
        ({"GUNICORN_WORKER_CLASS": "sync"}, "GUNICORN_WORKER_CLASS must be one of gevent, gthread"),
        ({"GUNICORN_WORKER_CONNECTIONS": "5"}, "GUNICORN_WORKER_CONNECTIONS must be between 10"),
        ({"MONGODB_TIMEOUT_MS": "1.5"}, "MONGODB_TIMEOUT_MS must be an integer"),
        ({"APP_QUERY_TIMEOUT_MS": "5"}, "APP_QUERY_TIMEOUT_MS must be between 10 and 600000"),
        ({"APP_LISTING_MAX_BYTES": "100"}, "APP_LISTING_MAX_BYTES must be between 1024"),
        ({"APP_LISTING_CONCURRENCY": "0"}, "APP_LISTING_CONCURRENCY must be between 1 and 64"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be one of"),
        ({"MONGODB_URI": "http://x"}, "MONGODB_URI must start with mongodb://"),
        ({"MONGODB_DATABASE": "a/b"}, "MONGODB_DATABASE must be"),
        ({"MONGODB_USERNAME": "app"}, "MONGODB_USERNAME and MONGODB_PASSWORD must be set together"),
        ({"PORT": "http"}, "PORT must be an integer"),
        ({"APP_BODY_TIMEOUT_SECONDS": "0"}, "APP_BODY_TIMEOUT_SECONDS must be between 1 and 300"),
        ({"APP_WRITE_TIMEOUT_SECONDS": "2.5"}, "APP_WRITE_TIMEOUT_SECONDS must be an integer"),
        ({"APP_AUTH_MAX_FAILURES": "0"}, "APP_AUTH_MAX_FAILURES must be between 1 and 100000"),
        ({"APP_AUTH_FAILURE_WINDOW_SECONDS": "x"}, "APP_AUTH_FAILURE_WINDOW_SECONDS must be an"),
        ({"APP_METRICS_PORT": "-1"}, "APP_METRICS_PORT must be between 0 and 65535"),
        ({"APP_TLS_CERT_FILE": "/etc/hostname"}, "must be set together"),
        ({"APP_TLS_KEY_FILE": "/etc/hostname"}, "must be set together"),
        (
            {"APP_TLS_CERT_FILE": "/nonexistent.pem", "APP_TLS_KEY_FILE": "/etc/hostname"},
            "APP_TLS_CERT_FILE names a file that does not exist or cannot be read",
        ),
    ],
)
def test_malformed_setting_is_refused_with_one_clear_line(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_defaults_and_uri_built_from_parts():
    settings = load_settings(
        {"MONGODB_USERNAME": "app", "MONGODB_PASSWORD": "p@ss:w/rd", "MONGODB_HOST": "db"}
    )
    assert settings.mongodb_uri == "mongodb://app:p%40ss%3Aw%2Frd@db:27017/?authSource=flaskdb"
    assert settings.mongodb_database == "flaskdb"
    assert settings.max_body_bytes == 65536
    assert settings.port == 8000
    assert settings.gunicorn_workers == 2
    assert settings.gunicorn_worker_class == "gevent"
    assert settings.gunicorn_worker_connections == 5000
    assert settings.gunicorn_threads == 4
    assert load_settings({"GUNICORN_WORKER_CLASS": "GThread"}).gunicorn_worker_class == "gthread"
    assert settings.mongodb_timeout_ms == 3000
    assert settings.query_timeout_ms == 5000
    assert settings.listing_max_bytes == 1024 * 1024
    assert settings.listing_concurrency == 2
    assert settings.body_timeout_seconds == 10
    assert settings.write_timeout_seconds == 10
    assert settings.metrics_port == 9100
    assert (settings.tls_cert_file, settings.tls_key_file) == (None, None)
    assert "p%40ss" not in settings.mongodb_target
    assert load_settings({"MONGODB_URI": "mongodb://x/"}).mongodb_uri == "mongodb://x/"


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"GUNICORN_WORKERS": "lots"}, "GUNICORN_WORKERS must be an integer, got 'lots'"),
        (
            {"APP_API_KEYS": '[{"name": "a"}]'},
            "APP_API_KEYS item 1 (a): scope must be read or write",
        ),
    ],
)
def test_gunicorn_stops_with_one_line_on_bad_config(tmp_path, env, line):
    result = Gunicorn(env, tmp_path).run_to_exit()
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"flaskapp: configuration error: {line}"]


def _workers_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_refuses_new_connections_and_lets_in_flight_request_finish(
    mongo, database_name, tmp_path
):
    server = Gunicorn(service_env(mongo.admin_uri, database_name), tmp_path, workers=3)
    server.start()
    try:
        deadline = time.monotonic() + 15
        while len(_workers_of(server.proc.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # the first worker answers while the others still boot
        assert len(_workers_of(server.proc.pid)) == 3
        # A keep-alive connection that sits idle must not hold the shutdown up for long.
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=15)
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")
        body = b'{"graceful": true}'
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=15)
        try:
            # Headers and half the body now, SIGTERM, then the rest: the request must complete.
            sock.sendall(
                b"POST /data HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + WRITE_KEY.encode() + b"\r\n"
                b"Connection: close\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body[:5]
            )
            time.sleep(0.5)
            server.proc.send_signal(signal.SIGTERM)
            stopped_at = time.monotonic()
            # New connections are refused while the request is still in flight.
            while not _refuses_connections(server.port) and time.monotonic() < stopped_at + 5:
                time.sleep(0.1)
            assert _refuses_connections(server.port)
            assert server.proc.poll() is None
            sock.sendall(body[5:])
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
        finally:
            sock.close()
            idle.close()
        assert response.startswith(b"HTTP/1.1 201"), response[:200]
        assert server.proc.wait(timeout=30) == 0
        assert time.monotonic() - stopped_at < 15  # keepalive (5 s), not graceful_timeout
        server.proc = None
        logs = server.logs()
        assert "Shutting down" in logs or "Handling signal: term" in logs
    finally:
        server.stop()


def _answer(sock: socket.socket) -> str:
    """The status line a connection got, or the error that ended it."""
    response = b""
    try:
        while chunk := sock.recv(65536):
            response += chunk
    except OSError as exc:
        return type(exc).__name__
    finally:
        sock.close()
    return response.split(b"\r\n", 1)[0].decode(errors="replace") or "closed without answer"


def _serving(workers: list[int]) -> bool:
    """Whether both workers have entered their serving loop: each has touched its gunicorn
    heartbeat file, whose time it sets from the monotonic clock (far below the wall-clock
    time the file was created with)."""
    if len(workers) != 2:
        return False
    for pid in workers:
        fds = Path(f"/proc/{pid}/fd")
        try:
            beats = [fd.stat().st_mtime for fd in fds.iterdir() if "/wgunicorn-" in os.readlink(fd)]
        except OSError:
            return False
        if not beats or min(beats) > time.time() / 2:
            return False
    return True


def _queued_request(
    port: int, context: ssl.SSLContext | None, connected: Callable[[], None]
) -> str:
    """A GET /healthz on a new connection (over TLS with ``context``): the status line it got,
    or the error that ended it. ``connected`` is called once the kernel has completed the TCP
    handshake, before any TLS handshake, which needs a worker."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    except OSError as exc:
        return type(exc).__name__
    connected()
    try:
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    except OSError as exc:
        sock.close()
        return type(exc).__name__
    return _answer(sock)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_sigterm_serves_connections_waiting_in_the_listen_backlog(
    mongo, database_name, tmp_path, tls
):
    """Connections whose handshake the kernel completed while the workers were busy (a pod
    throttled at its CPU limit when SIGTERM comes, or a worker recycled by max_requests) are
    answered, not reset when the last worker closes the listening socket; over TLS too, where
    the handshake of a connection taken from the backlog runs after the listener has closed."""
    env = service_env(mongo.admin_uri, database_name)
    context = None
    ca = None
    if tls:
        ca, cert, key = throwaway_pki(tmp_path)
        env |= {"APP_TLS_CERT_FILE": str(cert), "APP_TLS_KEY_FILE": str(key)}
        context = ssl.create_default_context(cafile=str(ca))
    server = Gunicorn(env, tmp_path, ca_file=ca)
    server.start()
    try:
        deadline = time.monotonic() + 15
        while not _serving(workers := _workers_of(server.proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _serving(workers)
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        count = 20
        queued = threading.Semaphore(0)
        with ThreadPoolExecutor(count) as pool:
            try:
                clients = [
                    pool.submit(_queued_request, server.port, context, queued.release)
                    for _ in range(count)
                ]
                for _ in range(count):
                    assert queued.acquire(timeout=15)
                time.sleep(0.2)  # the requests (or the TLS client hellos) sent
                server.proc.send_signal(signal.SIGTERM)
                # Past the workers' one-second loop, which stops listening as soon as they resume.
                time.sleep(1.5)
            finally:
                for pid in workers:
                    os.kill(pid, signal.SIGCONT)
            answers = [client.result(timeout=30) for client in clients]
        assert answers == ["HTTP/1.1 200 OK"] * count
        assert server.proc.wait(timeout=30) == 0
        server.proc = None
        assert "Traceback" not in server.logs()
    finally:
        server.stop()


def test_ordinary_requests_keep_answering_beside_300_slow_clients(mongo, database_name, tmp_path):
    with (
        Gunicorn(service_env(mongo.admin_uri, database_name), tmp_path) as server,
        SlowClients(server.port, count=300, interval=2.0) as slow,
    ):
        time.sleep(1.0)  # every slow connection is open and waiting
        latencies: list[float] = []
        statuses: list[int] = []
        ends = time.monotonic() + 6
        close = {"Connection": "close"}  # no idle keep-alive left to hold the shutdown up
        while time.monotonic() < ends:
            began = time.perf_counter()
            created = requests.post(
                f"{server.url}/data",
                json={"beside": "slow clients"},
                headers=close,
                timeout=10,
                auth=WRITER,
            )
            statuses.append(created.status_code)
            for path in ("/", f"/data/{created.json().get('id')}", "/readyz"):
                answer = requests.get(f"{server.url}{path}", headers=close, timeout=10, auth=WRITER)
                statuses.append(answer.status_code)
            latencies.append((time.perf_counter() - began) / 4)
            time.sleep(0.1)
        assert slow.opened >= 300
    assert set(statuses) == {200, 201}, statuses
    assert len(latencies) >= 20
    assert statistics.median(latencies) < 0.25, latencies
    assert max(latencies) < 2.0, latencies
    # The server closes a connection whose request does not arrive within keepalive.
    assert slow.closed_by_server >= 300


def test_store_uses_durable_writes_and_explicit_timeouts(mongo, database_name):
    from flaskapp.db import Store
    from flaskapp.records import now_ms
    from pymongo.write_concern import WriteConcern

    store = Store(
        load_settings(
            {
                "MONGODB_URI": mongo.admin_uri,
                "MONGODB_DATABASE": database_name,
                "MONGODB_TIMEOUT_MS": "1234",
            }
        )
    )
    records = store.records()
    assert records.write_concern == WriteConcern(w="majority", j=True)
    options = store.client().options
    assert options.server_selection_timeout == 1.234
    assert options.pool_options.connect_timeout == 1.234
    assert options.pool_options.socket_timeout == 1.234
    assert store.client() is store.client()
    records.insert_one({"created_at": now_ms(), "data": {"direct": True}})
    assert records.count_documents({"data.direct": True}) == 1
    records.delete_many({"data.direct": True})
    store.client().close()
