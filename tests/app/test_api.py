"""The HTTP API against the real service (gunicorn, two workers) and a real database."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests
from bson import ObjectId
from support import WRITER

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def post(base_url: str, body: object, **kwargs) -> requests.Response:
    kwargs.setdefault("auth", WRITER)
    return requests.post(f"{base_url}/data", json=body, timeout=10, **kwargs)


def assert_error(response: requests.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    assert "Traceback" not in response.text
    return body


def test_index_returns_welcome_and_current_utc_time(base_url):
    response = requests.get(f"{base_url}/", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert "welcome" in body["message"].lower()
    assert ISO.match(body["time"])
    served = datetime.fromisoformat(body["time"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - served).total_seconds()) < 5


def test_healthz_is_ok(base_url):
    response = requests.get(f"{base_url}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_when_database_answers(base_url):
    response = requests.get(f"{base_url}/readyz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_post_stores_object_with_server_side_created_at(base_url, records):
    before = datetime.now(UTC).replace(microsecond=0)
    response = post(base_url, {"name": "sensor-1", "value": 21.5, "tags": ["a", "b"]})
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "created_at"}
    assert ObjectId.is_valid(body["id"])
    assert response.headers["Location"] == f"/data/{body['id']}"
    stored = records.find_one({"_id": ObjectId(body["id"])})
    assert stored["data"] == {"name": "sensor-1", "value": 21.5, "tags": ["a", "b"]}
    assert stored["created_at"] >= before
    assert ISO.match(body["created_at"])


def test_get_returns_stored_record_with_string_id(base_url):
    payload = {"nested": {"list": [1, 2, {"x": None}], "flag": True}, "unicode": "héllo ✓"}
    created = post(base_url, payload).json()
    response = requests.get(f"{base_url}/data/{created['id']}", timeout=5, auth=WRITER)
    assert response.status_code == 200
    assert response.json() == {
        "id": created["id"],
        "created_at": created["created_at"],
        "data": payload,
    }


def test_client_cannot_set_id_or_created_at(base_url):
    created = post(base_url, {"_id": "mine", "created_at": "yesterday"}).json()
    record = requests.get(f"{base_url}/data/{created['id']}", timeout=5, auth=WRITER).json()
    assert record["id"] == created["id"] != "mine"
    assert record["created_at"] == created["created_at"]
    assert record["data"] == {"_id": "mine", "created_at": "yesterday"}


def test_delete_removes_record_then_404(base_url, records):
    created = post(base_url, {"doomed": True}).json()
    response = requests.delete(f"{base_url}/data/{created['id']}", timeout=5, auth=WRITER)
    assert response.status_code == 204
    assert response.content == b""
    assert records.find_one({"_id": ObjectId(created["id"])}) is None
    assert_error(
        requests.get(f"{base_url}/data/{created['id']}", timeout=5, auth=WRITER), 404, "not_found"
    )
    assert_error(requests.delete(f"{base_url}/data/{created['id']}", timeout=5, auth=WRITER), 404)


@pytest.mark.parametrize("method", ["get", "delete"])
def test_unknown_id_is_404(base_url, method):
    response = getattr(requests, method)(f"{base_url}/data/{ObjectId()}", timeout=5, auth=WRITER)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    "bad_id",
    ["abc", "0" * 23, "0" * 25, "z" * 24, "%24where", "%00" * 24, "\uff21\uff22\uff23"],
)
@pytest.mark.parametrize("method", ["get", "delete"])
def test_malformed_id_is_400(base_url, method, bad_id):
    response = getattr(requests, method)(f"{base_url}/data/{bad_id}", timeout=5, auth=WRITER)
    assert_error(response, 400, "invalid_id")


def test_list_is_newest_first_with_cursor_pagination(base_url):
    marker = f"page-{time.time_ns()}"
    ids = [post(base_url, {"marker": marker, "n": n}).json()["id"] for n in range(7)]
    seen: list[str] = []
    url = f"{base_url}/data?limit=3"
    pages = 0
    while url and len(seen) < 7:
        page = requests.get(url, timeout=5, auth=WRITER).json()
        assert page["limit"] == 3
        assert len(page["items"]) <= 3
        seen += [item["id"] for item in page["items"] if item["data"].get("marker") == marker]
        url = f"{base_url}/data?limit=3&cursor={page['next_cursor']}" if page["next_cursor"] else ""
        pages += 1
    assert seen == list(reversed(ids))
    assert pages >= 3


def test_list_returns_each_record_once_across_pages(base_url):
    for n in range(5):
        post(base_url, {"dup-check": n})
    all_ids: list[str] = []
    cursor = None
    while True:
        params = {"limit": "4"} | ({"cursor": cursor} if cursor else {})
        page = requests.get(f"{base_url}/data", params=params, timeout=5, auth=WRITER).json()
        all_ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(all_ids) == len(set(all_ids))
    stamps = [ObjectId(i) for i in all_ids]
    assert len(stamps) >= 5


def test_list_default_limit_is_50_and_max_500(base_url):
    for n in range(
        51 - len(requests.get(f"{base_url}/data?limit=500", timeout=5, auth=WRITER).json()["items"])
    ):
        post(base_url, {"fill": n})
    default = requests.get(f"{base_url}/data", timeout=5, auth=WRITER).json()
    assert default["limit"] == 50
    assert len(default["items"]) == 50
    assert default["next_cursor"]
    assert requests.get(f"{base_url}/data?limit=500", timeout=5, auth=WRITER).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=501",
        "limit=-1",
        "limit=abc",
        "limit=1.5",
        "limit=",
        "limit=%C2%B2",
        "cursor=",
        "cursor=not-a-cursor",
        "cursor=" + "A" * 80,
        "cursor=MTIzOnh5eg",
        "cursor=%24gt",
    ],
)
def test_invalid_pagination_is_400(base_url, query):
    body = assert_error(requests.get(f"{base_url}/data?{query}", timeout=5, auth=WRITER), 400)
    assert body["error"]["code"] in {"invalid_limit", "invalid_cursor"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"$where": "1"}, "invalid_key"),
        ({"a": {"$gt": 1}}, "invalid_key"),
        ({"a": [{"$set": 1}]}, "invalid_key"),
        ({"a.b": 1}, "invalid_key"),
        ({"nul\u0000key": 1}, "invalid_key"),
        ({"": 1}, "invalid_key"),
        ({"big": 2**63}, "invalid_value"),
        ({"small": -(2**63) - 1}, "invalid_value"),
    ],
)
def test_refused_keys_and_values_are_400(base_url, body, code, records):
    count = records.count_documents({})
    assert_error(post(base_url, body), 400, code)
    assert records.count_documents({}) == count


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{", "malformed_json"),
        (b"", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b'{"a": NaN}', "malformed_json"),
        (b'{"a": Infinity}', "malformed_json"),
        (b'{"a": 1e999}', "invalid_value"),
        (b'{"a": "\\ud800"}', "invalid_value"),
        (b"[1, 2]", "not_an_object"),
        (b'"text"', "not_an_object"),
        (b"42", "not_an_object"),
        (b"null", "not_an_object"),
        (b"[" * 20 + b"]" * 20, "not_an_object"),
        (b"[" * 40 + b"]" * 40, "too_deep"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "too_deep"),
    ],
)
def test_malformed_or_non_object_body_is_400(base_url, raw, code):
    response = requests.post(
        f"{base_url}/data",
        data=raw,
        headers={"Content-Type": "application/json"},
        timeout=5,
        auth=WRITER,
    )
    assert_error(response, 400, code)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
def test_wrong_content_type_is_415(base_url, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = requests.post(
        f"{base_url}/data", data=b'{"a": 1}', headers=headers, timeout=5, auth=WRITER
    )
    assert_error(response, 415, "unsupported_media_type")


def test_json_content_type_with_charset_is_accepted(base_url):
    response = requests.post(
        f"{base_url}/data",
        data=json.dumps({"charset": "ok"}).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
        timeout=5,
        auth=WRITER,
    )
    assert response.status_code == 201


def test_body_over_limit_is_413_and_at_limit_is_accepted(base_url):
    limit = 65536
    fits = json.dumps({"pad": "x" * (limit - 20)}).encode()
    fits = fits[:-2] + b"x" * (limit - len(fits)) + fits[-2:]
    assert len(fits) == limit
    response = requests.post(
        f"{base_url}/data",
        data=fits,
        headers={"Content-Type": "application/json"},
        timeout=10,
        auth=WRITER,
    )
    assert response.status_code == 201, response.text
    over = fits[:-2] + b"x" + fits[-2:]
    response = requests.post(
        f"{base_url}/data",
        data=over,
        headers={"Content-Type": "application/json"},
        timeout=10,
        auth=WRITER,
    )
    assert_error(response, 413)


def test_chunked_body_over_limit_is_413(base_url):
    def chunks():
        yield b'{"pad": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    response = requests.post(
        f"{base_url}/data",
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=10,
        auth=WRITER,
    )
    assert_error(response, 413)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/nope", 404),
        ("put", "/data", 405),
        ("patch", "/data/0", 405),
        ("post", "/healthz", 405),
    ],
)
def test_routing_errors_are_json(base_url, method, path, status):
    response = getattr(requests, method)(f"{base_url}{path}", timeout=5, auth=WRITER)
    assert_error(response, status)


def test_request_id_is_echoed_or_generated(base_url):
    given = requests.get(f"{base_url}/", headers={"X-Request-ID": "abc-123"}, timeout=5)
    assert given.headers["X-Request-ID"] == "abc-123"
    generated = requests.get(f"{base_url}/", headers={"X-Request-ID": "bad id\tx"}, timeout=5)
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])
    error = requests.get(
        f"{base_url}/data/abc", headers={"X-Request-ID": "err-1"}, timeout=5, auth=WRITER
    )
    assert error.json()["request_id"] == "err-1"


def test_logs_are_json_lines_with_request_id(service):
    rid = f"log-check-{time.time_ns()}"
    requests.get(
        f"{service.url}/data/{ObjectId()}", headers={"X-Request-ID": rid}, timeout=5, auth=WRITER
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in service.logs().splitlines() if line.strip()]
        matching = [line for line in lines if line.get("request_id") == rid]
        if matching:
            break
        time.sleep(0.1)
    assert matching, "no log line carries the request id"
    access = matching[-1]
    assert access["message"] == "request"
    assert access["status"] == 404
    assert access["route"] == "/data/<record_id>"
    assert access["level"] == "INFO"
    assert access["key"] == "writer"


def test_listing_index_exists(base_url, records):
    post(base_url, {"index": "check"})
    keys = [list(spec["key"].items()) for spec in records.list_indexes()]
    assert [("created_at", -1), ("_id", -1)] in keys


def test_openapi_document_is_served(base_url):
    response = requests.get(f"{base_url}/openapi.json", timeout=5)
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert {"/", "/data", "/data/{record_id}", "/healthz", "/readyz"} <= set(doc["paths"])
    assert "/metrics" not in doc["paths"]


def test_document_the_database_refuses_is_400_not_500(base_url, mongo):
    # FerretDB 1.24 stores no nested arrays; MongoDB does. Either way no 5xx.
    response = post(base_url, {"matrix": [[1, 2], [3, 4]]})
    if mongo.is_ferretdb:
        body = assert_error(response, 400, "rejected_by_database")
        assert "nested arrays" in body["error"]["message"]
    else:
        assert response.status_code == 201


def test_concurrent_writes_through_both_workers_are_all_stored(base_url, records):
    marker = f"concurrent-{time.time_ns()}"

    def write(n: int) -> str:
        response = requests.post(
            f"{base_url}/data",
            json={"marker": marker, "n": n},
            timeout=30,
            headers={"Connection": "close"},
            auth=WRITER,
        )
        assert response.status_code == 201
        return response.json()["id"]

    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(write, range(120)))
    assert len(set(ids)) == 120
    stored = sorted(doc["data"]["n"] for doc in records.find({"data.marker": marker}))
    assert stored == list(range(120))


def test_index_serves_the_listing_on_mongodb(base_url, records, mongo):
    if mongo.is_ferretdb:
        pytest.skip("FerretDB 1.24 sorts in memory; its query plans use no index for sorts")
    post(base_url, {"explain": True})
    plan = records.find({}).sort([("created_at", -1), ("_id", -1)]).limit(50).explain()
    assert "IXSCAN" in json.dumps(plan["queryPlanner"]["winningPlan"], default=str)


def test_one_database_client_per_worker_created_after_fork(service):
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda _: requests.get(
                    f"{service.url}/readyz", timeout=10, headers={"Connection": "close"}
                ),
                range(40),
            )
        )
    lines = [json.loads(line) for line in service.logs().splitlines() if line.strip()]
    created = [line["pid"] for line in lines if line["message"] == "database client created"]
    booted = {
        int(line["message"].rsplit(" ", 1)[1])
        for line in lines
        if line["message"].startswith("Booting worker with pid")
    }
    assert len(created) == len(set(created)), "a worker created more than one client"
    assert set(created) <= booted
    assert len(set(created)) == 2
    assert service.proc.pid not in created
