"""/metrics reports the whole pod: counts from every gunicorn worker, whichever answers."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import requests
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, name: str, labels: dict[str, str]) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def scrape(url: str) -> str:
    response = requests.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.text


def test_counts_are_exact_across_workers(service):
    url = service.url
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    before = sample(scrape(url), "flaskapp_http_requests_total", labels)

    def hit(_: int) -> int:
        # A new connection per request, so the requests spread over both workers.
        return requests.get(
            f"{url}/healthz", timeout=10, headers={"Connection": "close"}
        ).status_code

    def worker_pids() -> set[str]:
        """Workers whose own sample file counts /healthz answers."""
        pids = set()
        for path in service.metrics_dir.glob("counter_*.db"):
            for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
                if '"/healthz"' in key and value > 0:
                    pids.add(re.search(r"counter_(\d+)", path.name).group(1))
        return pids

    sent = 0
    with ThreadPoolExecutor(8) as pool:
        # Until both workers have answered some (almost always within the first batch).
        while sent < 200 or (len(worker_pids()) < 2 and sent < 1000):
            assert set(pool.map(hit, range(100))) == {200}
            sent += 100
    assert len(worker_pids()) >= 2, "requests should have reached more than one worker"

    # Whichever worker answers the scrape, it reports the sum over all workers.
    for _ in range(6):
        text = requests.get(f"{url}/metrics", timeout=10, headers={"Connection": "close"}).text
        assert sample(text, "flaskapp_http_requests_total", labels) == before + sent


def test_latency_histogram_and_status_labels(service):
    url = service.url
    requests.get(f"{url}/data/not-an-id", timeout=10)
    text = scrape(url)
    assert (
        sample(
            text,
            "flaskapp_http_requests_total",
            {"method": "GET", "route": "/data/<record_id>", "status": "400"},
        )
        >= 1
    )
    count = sample(
        text,
        "flaskapp_http_request_duration_seconds_count",
        {"method": "GET", "route": "/data/<record_id>"},
    )
    inf_bucket = sample(
        text,
        "flaskapp_http_request_duration_seconds_bucket",
        {"method": "GET", "route": "/data/<record_id>", "le": "+Inf"},
    )
    assert count >= 1
    assert inf_bucket == count
    assert "# TYPE flaskapp_http_request_duration_seconds histogram" in text


def test_unmatched_paths_share_one_label(service):
    for path in ("/a", "/b", "/c/d"):
        requests.get(f"{service.url}{path}", timeout=10)
    text = scrape(service.url)
    assert "/c/d" not in text
    assert (
        sample(text, "flaskapp_http_requests_total", {"route": "unmatched", "status": "404"}) >= 3
    )


def test_methods_a_client_invents_share_one_label(service):
    for method in ("FOO", "BAR", "BREW"):
        requests.request(method, f"{service.url}/data", timeout=10)
    text = scrape(service.url)
    for method in ("FOO", "BAR", "BREW"):
        assert f'method="{method}"' not in text
    assert sample(text, "flaskapp_http_requests_total", {"method": "other", "status": "405"}) >= 3
