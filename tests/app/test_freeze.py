"""The write freeze (flaskapp.maintenance) as the service applies it: while a freeze is in
force, POST /data and DELETE /data/<id> answer 503 maintenance with Retry-After and change
nothing; reads go on; writes resume once it is lifted or has expired."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from conftest import Mongo, service_env
from flaskapp import maintenance
from flaskapp.maintenance import Freeze
from support import READER, WRITER, Gunicorn


@pytest.fixture(scope="module")
def frozen_service(
    mongo: Mongo, database_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gunicorn, str]]:
    database = f"{database_name}_freeze"
    with Gunicorn(service_env(mongo.admin_uri, database), tmp_path_factory.mktemp("freeze")) as s:
        yield s, database
    with mongo.client() as client:
        client.drop_database(database)


def write(url: str) -> requests.Response:
    return requests.post(f"{url}/data", json={"during": "freeze"}, auth=WRITER, timeout=10)


def settle() -> None:
    """What a writer that sets or lifts a freeze waits before it relies on it: every worker
    reads the marker at most CHECK_SECONDS apart."""
    time.sleep(maintenance.SETTLE_SECONDS)


def until(predicate, seconds: float = maintenance.SETTLE_SECONDS) -> None:
    """Wait until predicate() holds."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the service did not notice within SETTLE_SECONDS"
        time.sleep(0.1)


@contextmanager
def frozen(mongo: Mongo, database: str, seconds: float, settled: bool = True) -> Iterator[Freeze]:
    """A freeze of ``database`` set as a restore sets it, lifted (and settled) at the end."""
    with mongo.client() as client:
        db = client[database]
        freeze = maintenance.freeze(db, "test restore", seconds=seconds)
        try:
            if settled:
                settle()
            yield freeze
        finally:
            maintenance.thaw(db)
            settle()


def test_writes_answer_503_maintenance_while_reads_go_on(frozen_service, mongo):
    server, database = frozen_service
    url = server.url
    kept = write(url).json()["id"]
    with mongo.client() as client:
        count = client[database]["records"].count_documents({})
    with frozen(mongo, database, seconds=40) as freeze:
        refused = [write(url) for _ in range(10)]
        refused.append(requests.delete(f"{url}/data/{kept}", auth=WRITER, timeout=10))
        for response in refused:
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "maintenance"
            assert 1 <= int(response.headers["Retry-After"]) <= freeze.retry_after() + 1
        with mongo.client() as client:
            assert client[database]["records"].count_documents({}) == count  # nothing changed
        listed = requests.get(f"{url}/data", auth=READER, timeout=10)
        assert listed.status_code == 200
        assert kept in [item["id"] for item in listed.json()["items"]]
        assert requests.get(f"{url}/data/{kept}", auth=READER, timeout=10).status_code == 200
        assert requests.get(f"{url}/readyz", timeout=10).status_code == 200
    assert write(url).status_code == 201
    assert requests.delete(f"{url}/data/{kept}", auth=WRITER, timeout=10).status_code == 204


def test_an_expired_freeze_holds_nothing(frozen_service, mongo):
    server, database = frozen_service
    with frozen(mongo, database, seconds=3, settled=False):
        until(lambda: write(server.url).status_code == 503)
        until(lambda: write(server.url).status_code == 201, seconds=10)


def test_bad_input_is_still_400_during_a_freeze(frozen_service, mongo):
    server, database = frozen_service
    with frozen(mongo, database, seconds=30):
        bad = requests.post(
            f"{server.url}/data",
            data=b"[1]",
            headers={"Content-Type": "application/json"},
            auth=WRITER,
            timeout=10,
        )
        assert bad.status_code == 400
        malformed = requests.delete(f"{server.url}/data/abc", auth=WRITER, timeout=10)
        assert malformed.status_code == 400
        assert write(server.url).status_code == 503
