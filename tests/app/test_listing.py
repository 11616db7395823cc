"""GET /data bounded: bytes per page, time per query, listings at once; and complete paging.

Three services share two databases seeded directly: ``pages`` (100 records, 70 of them of about
63 KB, twenty created in the same millisecond) and ``large`` (500 records of about 63 KB, 31 MB
in all, the size that used to take a worker and the database down). Both are larger than
FerretDB sorts in one pass; test_api.py pages through a small collection.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from bson import ObjectId
from conftest import Mongo, service_env
from support import WRITER, Gunicorn

LARGE = 63_000
PAGE_BUDGET = 512 * 1024


def seed(mongo: Mongo, database: str, documents: list[dict]) -> list[dict]:
    with mongo.client() as client:
        client.drop_database(database)
        records = client[database]["records"]
        for start in range(0, len(documents), 50):
            records.insert_many(documents[start : start + 50])
    return documents


def get(url: str, **params: str) -> requests.Response:
    # A new connection each time: idle keep-alive connections would hold each server's
    # shutdown at the end of the module for its keepalive.
    return requests.get(
        url, params=params, headers={"Connection": "close"}, timeout=60, auth=WRITER
    )


def record(created_at: datetime, n: int, size: int = 0) -> dict:
    return {"_id": ObjectId(), "created_at": created_at, "data": {"n": n, "pad": "x" * size}}


def workers_peak_mib(server: Gunicorn) -> float:
    """The highest resident memory any of the server's workers has reached."""
    assert server.proc is not None
    peak = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if int(fields["PPid"]) == server.proc.pid:
            peak = max(peak, int(fields["VmHWM"].split()[0]))
    return peak / 1024


@pytest.fixture(scope="module")
def databases(mongo: Mongo, database_name: str) -> Iterator[dict[str, list[dict]]]:
    now = datetime.now(UTC).replace(microsecond=0)
    # Over listing.SORT_MAX_BYTES, so FerretDB pages take the two-pass path.
    pages = [record(now - timedelta(seconds=n), n, LARGE if n % 8 else 10) for n in range(80)]
    tied = now - timedelta(milliseconds=500)
    pages += [record(tied, 80 + n) for n in range(20)]
    large = [record(now - timedelta(milliseconds=n), n, LARGE) for n in range(500)]
    names = {"pages": f"{database_name}_pages", "large": f"{database_name}_large"}
    seeded = {
        "pages": seed(mongo, names["pages"], pages),
        "large": seed(mongo, names["large"], large),
    }
    yield {names[key]: value for key, value in seeded.items()}
    with mongo.client() as client:
        for name in names.values():
            client.drop_database(name)


def start(mongo: Mongo, database: str, workdir: Path, **env: str) -> Gunicorn:
    tmp = workdir / "tmp"
    tmp.mkdir()
    return Gunicorn(service_env(mongo.admin_uri, database, TMPDIR=str(tmp), **env), workdir)


@pytest.fixture(scope="module")
def pages(mongo, database_name, databases, tmp_path_factory) -> Iterator[Gunicorn]:
    """Pages of at most 512 KiB; one listing at a time."""
    settings = {"APP_LISTING_MAX_BYTES": str(PAGE_BUDGET), "APP_LISTING_CONCURRENCY": "1"}
    with start(mongo, f"{database_name}_pages", tmp_path_factory.mktemp("pages"), **settings) as s:
        yield s


@pytest.fixture(scope="module")
def large(mongo, database_name, databases, tmp_path_factory) -> Iterator[Gunicorn]:
    """Default settings but one listing at a time, over 500 records of 63 KB."""
    settings = {"APP_LISTING_CONCURRENCY": "1", "APP_QUERY_TIMEOUT_MS": "30000"}
    with start(mongo, f"{database_name}_large", tmp_path_factory.mktemp("large"), **settings) as s:
        yield s


def walk(url: str, limit: int) -> list[dict]:
    """Every page from the first to the last, each with the size of its body as sent
    (``"wire_bytes"``)."""
    pages = []
    cursor = None
    while True:
        params = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        response = get(f"{url}/data", **params)
        assert response.status_code == 200, response.text
        assert int(response.headers["Content-Length"]) == len(response.content)
        pages.append(response.json() | {"wire_bytes": len(response.content)})
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            return pages


def assert_within_budget(pages: list[dict], budget: int) -> None:
    """Every page's body fits the budget, unless its one record alone does not."""
    for page in pages:
        assert page["items"], "a page holds at least one record when any is left"
        if len(page["items"]) > 1:
            assert page["wire_bytes"] <= budget, (page["wire_bytes"], len(page["items"]))


@pytest.fixture(scope="module")
def walked(pages: Gunicorn) -> dict[int, list[dict]]:
    return {limit: walk(pages.url, limit) for limit in (20, 500)}


@pytest.mark.parametrize("limit", [20, 500])
def test_paging_visits_every_record_once_newest_first(walked, limit, databases, database_name):
    stored = databases[f"{database_name}_pages"]
    newest_first = sorted(stored, key=lambda d: (d["created_at"], d["_id"]), reverse=True)
    seen = [item["id"] for page in walked[limit] for item in page["items"]]
    assert seen == [str(d["_id"]) for d in newest_first]
    assert all(1 <= len(page["items"]) <= limit for page in walked[limit])


def test_page_stops_at_its_byte_budget_with_at_least_one_record(walked):
    pages = walked[500]
    assert len(pages) >= 70 * LARGE // PAGE_BUDGET  # 70 records of 63 KB need this many pages
    assert_within_budget(pages, PAGE_BUDGET)
    assert any(len(page["items"]) > 1 for page in pages)
    # Pages are filled: the next record would not have fitted.
    assert max(page["wire_bytes"] for page in pages) > PAGE_BUDGET - LARGE - 200


def test_one_record_over_the_budget_is_a_page_of_its_own(mongo, database_name, tmp_path):
    with start(mongo, f"{database_name}_pages", tmp_path, APP_LISTING_MAX_BYTES="1024") as server:
        pages, cursor = [], None
        for _ in range(4):
            page = get(f"{server.url}/data", limit="50", **({"cursor": cursor} if cursor else {}))
            pages.append(page.json())
            cursor = pages[-1]["next_cursor"]
    large = [p for p in pages if any(len(i["data"]["pad"]) == LARGE for i in p["items"])]
    assert large, "four pages from the newest reach a large record"
    assert all(len(page["items"]) == 1 and page["next_cursor"] for page in large)
    assert all(1 <= len(page["items"]) <= 50 for page in pages)


def test_500_large_records_cost_a_worker_one_page_not_the_collection(large):
    before = workers_peak_mib(large)
    response = get(f"{large.url}/data", limit="500")
    assert response.status_code == 200, response.text
    page = response.json()
    assert 1 <= len(page["items"]) <= 17  # 1 MiB of 63 KB records
    assert page["next_cursor"]
    assert len(response.content) < 1.2 * 1024 * 1024
    # Reading all 500 (31 MB) into the worker would raise its peak by far more than this.
    assert workers_peak_mib(large) - before < 40


def hold_slots(directory: Path, count: int) -> list[int]:
    """Take the listing slots from outside the service, as a running listing would."""
    directory.mkdir(parents=True, exist_ok=True)
    held = []
    for index in range(count):
        fd = os.open(directory / f"slot-{index}", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.append(fd)
    return held


def test_listing_is_503_with_retry_after_while_slots_are_taken_and_the_rest_answers(pages):
    slots = Path(pages.env["TMPDIR"]) / f"flaskapp-listing-{pages.port}"
    held = hold_slots(slots, 1)
    try:
        busy = get(f"{pages.url}/data", limit="1")
        assert busy.status_code == 503
        assert busy.headers["Retry-After"] == "1"
        assert busy.json()["error"]["code"] == "listing_busy"
        created = requests.post(
            f"{pages.url}/data",
            json={"while": "busy"},
            headers={"Connection": "close"},
            timeout=10,
            auth=WRITER,
        )
        assert created.status_code == 201
        record_id = created.json()["id"]
        assert get(f"{pages.url}/data/{record_id}").status_code == 200
        assert get(f"{pages.url}/healthz").status_code == 200
        assert get(f"{pages.url}/readyz").status_code == 200
    finally:
        for fd in held:
            os.close(fd)
    assert get(f"{pages.url}/data", limit="1").status_code == 200
    deleted = requests.delete(
        f"{pages.url}/data/{record_id}", headers={"Connection": "close"}, timeout=10, auth=WRITER
    )
    assert deleted.status_code == 204


def test_concurrent_listings_beyond_the_limit_are_refused_while_others_answer(large):
    record_id = get(f"{large.url}/data", limit="1").json()["items"][0]["id"]
    barrier = threading.Barrier(6)

    def listing(_: int) -> requests.Response:
        barrier.wait()
        return get(f"{large.url}/data", limit="500")

    with ThreadPoolExecutor(6) as pool:
        listings = pool.map(listing, range(6))
        others = []
        for _ in range(5):
            began = time.perf_counter()
            answer = get(f"{large.url}/data/{record_id}")
            others.append((answer.status_code, time.perf_counter() - began))
            assert get(f"{large.url}/healthz").status_code == 200
        statuses = [(r.status_code, r.headers.get("Retry-After")) for r in listings]
    assert {status for status, _ in statuses} == {200, 503}, statuses
    assert all(retry == "1" for status, retry in statuses if status == 503)
    assert all(status == 200 for status, _ in others), others
    assert max(seconds for _, seconds in others) < 2.0, others


def test_query_over_its_time_limit_is_a_clean_503(mongo, database_name, databases, tmp_path):
    if not mongo.is_ferretdb:
        pytest.skip("MongoDB reads this page from its index well within 10 ms")
    with start(
        mongo, f"{database_name}_large", tmp_path, APP_QUERY_TIMEOUT_MS="10", GUNICORN_WORKERS="1"
    ) as server:
        # Connected first: making a connection counts against the caller's time limit too.
        assert get(f"{server.url}/readyz").status_code == 200
        response = get(f"{server.url}/data", limit="500")
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "5"
        assert response.json()["error"]["code"] == "query_timeout"
        assert "Traceback" not in server.logs()
        assert get(f"{server.url}/readyz").status_code == 200


# Records whose JSON is far larger than their BSON: control characters (one byte stored, six
# sent: \u0001), non-ASCII text (two or four bytes stored, six or twelve sent), large numbers
# (eight bytes stored, up to 24 sent). One of them alone is over the budget.
WIRE_BUDGET = 64 * 1024


def expanding(n: int) -> dict:
    kind = n % 3
    if kind == 0:
        data = {"n": n, "control": "\x01\x1f\x7f\x00" * 1500}
    elif kind == 1:
        data = {"n": n, "text": "é" * 3000 + "😀" * 600 + "\u2028"}
    else:
        data = {"n": n, "floats": [-1.7976931348623157e308] * 700, "ints": [-(2**63)] * 700}
    return data


@pytest.fixture(scope="module")
def wire(mongo: Mongo, database_name: str, tmp_path_factory) -> Iterator[tuple[Gunicorn, list]]:
    name = f"{database_name}_wire"
    now = datetime.now(UTC).replace(microsecond=0)
    documents = [
        {"_id": ObjectId(), "created_at": now - timedelta(seconds=n), "data": expanding(n)}
        for n in range(60)
    ]
    documents[30]["data"] = {"n": 30, "alone": "\x02" * 20_000}  # 120 KB as JSON
    seed(mongo, name, documents)
    settings = {"APP_LISTING_MAX_BYTES": str(WIRE_BUDGET)}
    with start(mongo, name, tmp_path_factory.mktemp("wire"), **settings) as server:
        yield server, documents
    with mongo.client() as client:
        client.drop_database(name)


@pytest.mark.parametrize("limit", [7, 500])
def test_page_budget_counts_the_bytes_sent(wire, limit):
    server, documents = wire
    pages = walk(server.url, limit)
    assert_within_budget(pages, WIRE_BUDGET)
    seen = [item for page in pages for item in page["items"]]
    assert [item["id"] for item in seen] == [str(d["_id"]) for d in documents]
    assert [item["data"] for item in seen] == [d["data"] for d in documents]
    alone = [page for page in pages if any("alone" in item["data"] for item in page["items"])]
    assert len(alone) == 1
    assert len(alone[0]["items"]) == 1
    assert alone[0]["wire_bytes"] > WIRE_BUDGET
    assert all(1 <= len(page["items"]) <= limit for page in pages)
    # Each record is 20-40 KB as JSON: pages hold one to three of them, never BSON's twelve.
    assert max(len(page["items"]) for page in pages) <= 3
