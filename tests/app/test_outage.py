"""The database goes away and comes back: the service answers 503 meanwhile and recovers by
itself; acknowledged writes survive a server restart on the same data directory."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator

import pytest
import requests
from conftest import needs_ferretdb, service_env
from support import WRITER, FerretDB, Gunicorn

pytestmark = needs_ferretdb


@pytest.fixture
def private_db(ferretdb_bin, tmp_path) -> Iterator[FerretDB]:
    """A FerretDB of this test's own, which the test may stop and start."""
    with FerretDB(ferretdb_bin, tmp_path / "data") as server:
        yield server


@pytest.fixture
def private_service(private_db, tmp_path) -> Iterator[Gunicorn]:
    with Gunicorn(
        service_env(private_db.admin_uri, "outage", MONGODB_TIMEOUT_MS="700"), tmp_path
    ) as service:
        yield service


def wait_for(predicate, timeout: float = 30, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def status(url: str, method: str = "get", **kwargs) -> int:
    kwargs.setdefault("auth", WRITER)
    return requests.request(method, url, timeout=10, **kwargs).status_code


def test_database_stopped_mid_test_gives_503_then_recovers(private_db, private_service):
    url = private_service.url
    before = requests.post(f"{url}/data", json={"phase": "before"}, timeout=10, auth=WRITER)
    assert before.status_code == 201

    private_db.stop()

    ready = requests.get(f"{url}/readyz", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "database_unavailable"
    assert ready.json()["status"] == "unavailable"
    write = requests.post(f"{url}/data", json={"phase": "during"}, timeout=10, auth=WRITER)
    assert write.status_code == 503
    assert write.json()["error"]["code"] == "database_unavailable"
    assert write.headers["Retry-After"]
    assert status(f"{url}/data") == 503
    assert status(f"{url}/data/{before.json()['id']}") == 503
    assert status(f"{url}/healthz") == 200, "liveness must not depend on the database"
    metrics = requests.get(private_service.metrics_url, timeout=10).text
    counted = re.search(r"^flaskapp_database_unavailable_total (\S+)$", metrics, re.MULTILINE)
    assert counted, metrics
    assert float(counted.group(1)) >= 3  # the write and the two reads above

    private_db.start()

    wait_for(lambda: status(f"{url}/readyz") == 200)
    after = requests.post(f"{url}/data", json={"phase": "after"}, timeout=10, auth=WRITER)
    assert after.status_code == 201
    listed = requests.get(f"{url}/data", timeout=10, auth=WRITER).json()["items"]
    assert [item["data"]["phase"] for item in listed] == ["after", "before"]


def test_service_starts_while_database_is_down_and_becomes_ready(private_db, tmp_path):
    private_db.stop()
    service = Gunicorn(
        service_env(private_db.admin_uri, "late", MONGODB_TIMEOUT_MS="500"), tmp_path
    )
    service.start()
    try:
        assert status(f"{service.url}/healthz") == 200
        assert status(f"{service.url}/readyz") == 503
        private_db.start()
        wait_for(lambda: status(f"{service.url}/readyz") == 200)
        assert status(f"{service.url}/data", "post", json={"late": True}) == 201
    finally:
        service.stop()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_acknowledged_writes_survive_database_restart(private_db, private_service, how):
    url = private_service.url
    ids = [
        requests.post(f"{url}/data", json={"n": n}, timeout=10, auth=WRITER).json()["id"]
        for n in range(20)
    ]
    private_db.stop(how)
    private_db.start()
    wait_for(lambda: status(f"{url}/readyz") == 200)
    for n, record_id in enumerate(ids):
        record = requests.get(f"{url}/data/{record_id}", timeout=10, auth=WRITER)
        assert record.status_code == 200
        assert record.json()["data"] == {"n": n}
    listed = requests.get(f"{url}/data?limit=500", timeout=10, auth=WRITER).json()["items"]
    assert [item["id"] for item in listed] == list(reversed(ids))
