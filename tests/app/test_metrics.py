"""Metrics: served by gunicorn's master on APP_METRICS_PORT, summed over every worker, never on
the public port; the files behind them stay bounded however many workers are recycled."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from conftest import service_env
from flaskapp.config import ConfigError, load_settings
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from support import WRITER, Gunicorn, free_port

HEALTHZ = {"method": "GET", "route": "/healthz", "status": "200"}


def sample(text: str, name: str, labels: dict[str, str]) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def scrape(server: Gunicorn) -> str:
    response = requests.get(server.metrics_url, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.text


def hit(server: Gunicorn, path: str = "/healthz") -> int:
    # A new connection per request, so the requests spread over the workers.
    return requests.get(
        f"{server.url}{path}", timeout=10, headers={"Connection": "close"}
    ).status_code


def listening_ports(pid: int) -> set[int]:
    """The TCP ports a process and its children listen on (from /proc, whoever the owner)."""
    pids = [pid] + [
        int(p)
        for p in subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True
        ).stdout.split()
    ]
    inodes = set()
    for each in pids:
        for fd in Path(f"/proc/{each}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_counts_are_exact_across_workers(service):
    before = sample(scrape(service), "flaskapp_http_requests_total", HEALTHZ)

    def worker_pids() -> set[str]:
        """Workers whose own sample file counts /healthz answers."""
        pids = set()
        for path in service.metrics_dir.glob("counter_*.db"):
            for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
                if '"/healthz"' in key and value > 0:
                    pids.add(re.search(r"counter_(\w+)", path.name).group(1))
        return pids

    sent = 0
    with ThreadPoolExecutor(8) as pool:
        # Until both workers have answered some (almost always within the first batch).
        while sent < 200 or (len(worker_pids()) < 2 and sent < 1000):
            assert set(pool.map(lambda _: hit(service), range(100))) == {200}
            sent += 100
    assert len(worker_pids()) >= 2, "requests should have reached more than one worker"
    for _ in range(3):
        assert sample(scrape(service), "flaskapp_http_requests_total", HEALTHZ) == before + sent


def test_public_port_answers_404_for_metrics(service):
    for path in ("/metrics", "/metrics/"):
        response = requests.get(f"{service.url}{path}", timeout=10)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert "flaskapp_http_requests_total" not in response.text


def test_latency_histogram_and_status_labels(service):
    requests.get(f"{service.url}/data/not-an-id", timeout=10, auth=WRITER)
    text = scrape(service)
    labels = {"method": "GET", "route": "/data/<record_id>"}
    assert sample(text, "flaskapp_http_requests_total", labels | {"status": "400"}) >= 1
    count = sample(text, "flaskapp_http_request_duration_seconds_count", labels)
    inf_bucket = sample(
        text, "flaskapp_http_request_duration_seconds_bucket", labels | {"le": "+Inf"}
    )
    assert count >= 1
    assert inf_bucket == count
    assert "# TYPE flaskapp_http_request_duration_seconds histogram" in text


def test_unmatched_paths_share_one_label(service):
    for path in ("/a", "/b", "/c/d"):
        requests.get(f"{service.url}{path}", timeout=10)
    text = scrape(service)
    assert "/c/d" not in text
    assert (
        sample(text, "flaskapp_http_requests_total", {"route": "unmatched", "status": "404"}) >= 3
    )


def test_methods_a_client_invents_share_one_label(service):
    for method in ("FOO", "BAR", "BREW"):
        requests.request(method, f"{service.url}/data", timeout=10, auth=WRITER)
    text = scrape(service)
    for method in ("FOO", "BAR", "BREW"):
        assert f'method="{method}"' not in text
    assert sample(text, "flaskapp_http_requests_total", {"method": "other", "status": "405"}) >= 3


def test_metrics_answer_while_every_worker_is_stopped(mongo, database_name, tmp_path):
    with Gunicorn(service_env(mongo.admin_uri, database_name), tmp_path) as server:
        assert [hit(server) for _ in range(10)] == [200] * 10
        answered = sample(scrape(server), "flaskapp_http_requests_total", HEALTHZ)
        workers = server.workers()
        assert len(workers) == 2
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        try:
            with pytest.raises(requests.Timeout):
                requests.get(f"{server.url}/healthz", timeout=2)
            text = scrape(server)
            assert sample(text, "flaskapp_http_requests_total", HEALTHZ) == answered
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        assert listening_ports(server.proc.pid) == {
            server.port,
            int(server.env["APP_METRICS_PORT"]),
        }


def test_metrics_port_0_serves_no_metrics(mongo, database_name, tmp_path):
    env = service_env(mongo.admin_uri, database_name, APP_METRICS_PORT="0")
    with Gunicorn(env, tmp_path) as server:
        assert hit(server) == 200
        assert listening_ports(server.proc.pid) == {server.port}
        assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 404


def test_metrics_port_must_differ_from_the_public_port():
    with pytest.raises(ConfigError, match="APP_METRICS_PORT must differ from PORT"):
        load_settings({"PORT": "8000", "APP_METRICS_PORT": "8000"})
    with pytest.raises(ConfigError, match="APP_METRICS_PORT must be between 0 and 65535"):
        load_settings({"APP_METRICS_PORT": "70000"})
    assert load_settings({}).metrics_port == 9100


def test_a_metrics_port_in_use_stops_gunicorn_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = Gunicorn({"APP_METRICS_PORT": str(port)}, tmp_path).run_to_exit()
    assert result.returncode == 1
    refusal = [line for line in result.stderr.splitlines() if line.startswith("flaskapp:")]
    assert refusal == [
        f"flaskapp: cannot serve metrics on APP_METRICS_PORT {port}: "
        "[Errno 98] Address already in use"
    ]


RECYCLED = 12


def booted(server: Gunicorn) -> int:
    return server.logs().count("Booting worker with pid")


def test_recycled_workers_leave_no_files_and_lose_no_count(mongo, database_name, tmp_path):
    """Workers recycled every 10 requests: the directory holds the live workers' files and
    one archive per type, a scrape's totals never go down, and they add up to what was sent."""
    server = Gunicorn(
        service_env(mongo.admin_uri, database_name),
        tmp_path,
        args=("--max-requests", "10", "--max-requests-jitter", "0"),
    )
    seen: list[tuple[float, float]] = []
    failed: list[str] = []
    stop = threading.Event()

    def scraper() -> None:
        while not stop.is_set():
            try:
                response = requests.get(server.metrics_url, timeout=10)
            except requests.RequestException as exc:
                failed.append(repr(exc))
                continue
            if response.status_code != 200:
                failed.append(f"{response.status_code}: {response.text[:200]}")
                continue
            text = response.text
            seen.append(
                (
                    sample(text, "flaskapp_http_requests_total", HEALTHZ),
                    sample(
                        text,
                        "flaskapp_http_request_duration_seconds_count",
                        {"route": "/healthz"},
                    ),
                )
            )
            time.sleep(0.02)

    with server:
        first = sample(scrape(server), "flaskapp_http_requests_total", HEALTHZ)
        watcher = threading.Thread(target=scraper)
        watcher.start()
        sent = 0
        deadline = time.monotonic() + 120
        try:
            with ThreadPoolExecutor(4) as pool:
                # A worker told to restart still serves until its loop notices (up to a second),
                # so requests go on until a dozen workers have come and gone.
                while booted(server) < RECYCLED + 2 and time.monotonic() < deadline:
                    statuses = list(pool.map(lambda _: hit(server), range(20)))
                    assert statuses == [200] * 20
                    sent += 20
        finally:
            stop.set()
            watcher.join(timeout=30)
        final = sample(scrape(server), "flaskapp_http_requests_total", HEALTHZ)
        # Each recycled worker asked for its successor first; once they are gone, the master
        # is back to two workers.
        successors = server.logs().count("Asking the master for a successor")
        settled = time.monotonic() + 60
        while len(server.workers()) != 2 and time.monotonic() < settled:
            time.sleep(0.5)
        live = {str(pid) for pid in server.workers()}
        files = sorted(path.name for path in server.metrics_dir.iterdir())
        started = booted(server)
    assert started >= RECYCLED + 2, "workers should have been recycled every 10 requests"
    assert successors >= started - 2 - 1, (successors, started)
    assert len(live) == 2
    assert final == first + sent
    assert failed == [], "every scrape during the recycling must succeed"
    assert len(seen) > 20
    for earlier, later in itertools.pairwise(seen):
        assert later[0] >= earlier[0], (earlier, later)
        assert later[1] >= earlier[1], (earlier, later)
    owners = {re.match(r"(counter|histogram)_(\w+)\.db$", name).group(2) for name in files}
    assert owners <= live | {"archive"}, files
    assert {"counter_archive.db", "histogram_archive.db"} <= set(files)
    assert len(files) <= 2 * len(live) + 2
    print(
        json.dumps(
            {"workers_booted": started, "requests": sent, "scrapes": len(seen), "files": files}
        )
    )


def test_archives_sum_like_a_scrape(tmp_path):
    """A fold keeps every sample's value: the collector reads the same totals before and after."""
    from flaskapp import exporter
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    script = (
        "import sys; from prometheus_client import Counter, Histogram;"
        "c = Counter('jobs', 'Jobs.', ['kind']); h = Histogram('took', 'Took.', buckets=(1, 2));"
        "n = int(sys.argv[1]); [c.labels(str(i % 3)).inc(i) for i in range(n)];"
        "[h.observe(i % 3) for i in range(n)]"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for n in (5, 7, 11):
        subprocess.run([sys.executable, "-c", script, str(n)], env=env, check=True)
    dead = sorted(
        {re.match(r"\w+?_(\d+)\.db$", p.name).group(1) for p in tmp_path.iterdir()}, key=int
    )
    assert len(dead) == 3

    def text() -> dict[tuple[str, tuple], float]:
        """Every sample a scrape reports, whatever order the families come in."""
        registry = CollectorRegistry()
        MultiProcessCollector(registry, str(tmp_path))
        exposition = generate_latest(registry).decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(exposition)
            for s in family.samples
        }

    before = text()
    assert before
    for pid in dead:
        exporter.fold(int(pid), str(tmp_path))
        assert text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counter_archive.db",
        "histogram_archive.db",
    ]


def test_a_worker_file_not_yet_sized_does_not_fail_the_scrape(tmp_path):
    """A worker creates its file empty and sizes it next: a scrape in between still works."""
    from flaskapp import exporter

    script = "from prometheus_client import Counter; Counter('jobs', 'Jobs.').inc(3)"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True)
    (tmp_path / "counter_4242.db").touch()
    port = free_port()
    server = exporter.serve(port, str(tmp_path))
    try:
        response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 200
    assert sample(response.text, "jobs_total", {}) == 3
