"""API keys: every /data request needs one, a read key cannot write, strangers who keep trying
are slowed down without slowing anyone with a valid key; the keys never reach a log."""

from __future__ import annotations

import hashlib
import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from bson import ObjectId
from conftest import Mongo, service_env
from flaskapp import auth, limits
from flaskapp.config import ApiKey, ConfigError, load_settings
from support import (
    READ_KEY,
    READER,
    WRITE_KEY,
    WRITER,
    Bearer,
    Gunicorn,
    api_keys_json,
)

# Every kind of request under /data: the routes, a method no route has, a path no route has.
DATA_REQUESTS = [
    ("GET", "/data"),
    ("POST", "/data"),
    ("GET", f"/data/{ObjectId()}"),
    ("DELETE", f"/data/{ObjectId()}"),
    ("PUT", "/data"),
    ("GET", "/data/a/b"),
]
OPEN_PATHS = ["/", "/healthz", "/readyz", "/openapi.json"]


def assert_refused(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


def send(base_url: str, method: str, path: str, **kwargs) -> requests.Response:
    if method == "POST":
        kwargs.setdefault("json", {"auth": "test"})
    return requests.request(method, f"{base_url}{path}", timeout=10, **kwargs)


@pytest.mark.parametrize(("method", "path"), DATA_REQUESTS)
def test_every_data_request_without_a_key_is_401(base_url, method, path):
    assert_refused(send(base_url, method, path), 401, "missing_api_key")


@pytest.mark.parametrize(
    "header",
    [
        f"Basic {WRITE_KEY}",
        "Bearer",
        "Bearer ",
        f"Bearer {WRITE_KEY} extra",
        f"Bearer\t{WRITE_KEY}",
        f"Token {WRITE_KEY}",
        WRITE_KEY,
        "Bearer " + "k" * 1025,
        "",
    ],
    ids=[
        "basic",
        "scheme-only",
        "empty-key",
        "two-words",
        "tab",
        "other-scheme",
        "no-scheme",
        "too-long",
        "empty",
    ],
)
def test_malformed_authorization_is_401(base_url, header):
    response = send(base_url, "GET", "/data", headers={"Authorization": header})
    assert_refused(response, 401, "invalid_api_key")


@pytest.mark.parametrize(
    "key",
    [
        WRITE_KEY[:-1],
        WRITE_KEY + "x",
        WRITE_KEY.upper(),
        hashlib.sha256(WRITE_KEY.encode()).hexdigest(),
        "ünïcode-key",
    ],
    ids=["shorter", "longer", "other-case", "the-hash-itself", "non-ascii"],
)
def test_unknown_key_is_401(base_url, key):
    header = f"Bearer {key}".encode().decode("latin-1")
    response = send(base_url, "GET", "/data", headers={"Authorization": header})
    assert_refused(response, 401, "invalid_api_key")


def test_scheme_is_case_insensitive(base_url):
    response = send(base_url, "GET", "/data", headers={"Authorization": f"bEaReR   {READ_KEY}"})
    assert response.status_code == 200, response.text


def test_read_key_reads_and_cannot_write(base_url):
    created = send(base_url, "POST", "/data", auth=WRITER)
    assert created.status_code == 201
    record = f"/data/{created.json()['id']}"
    assert send(base_url, "GET", "/data", auth=READER).status_code == 200
    assert send(base_url, "GET", record, auth=READER).status_code == 200
    assert_refused(send(base_url, "POST", "/data", auth=READER), 403, "insufficient_scope")
    assert_refused(send(base_url, "DELETE", record, auth=READER), 403, "insufficient_scope")
    assert send(base_url, "GET", record, auth=READER).status_code == 200  # still there
    assert send(base_url, "DELETE", record, auth=WRITER).status_code == 204


@pytest.mark.parametrize("path", OPEN_PATHS)
def test_operational_endpoints_need_no_key(base_url, path):
    assert requests.get(f"{base_url}{path}", timeout=10).status_code == 200


def test_logs_name_the_key_and_never_show_it_or_its_hash(service):
    rid = f"key-log-{time.time_ns()}"
    send(service.url, "GET", "/data", auth=READER, headers={"X-Request-ID": rid})
    send(service.url, "GET", "/data", auth=Bearer("not-a-key"), headers={"X-Request-ID": rid})
    lines = [json.loads(line) for line in service.logs().splitlines() if line.strip()]
    access = [line for line in lines if line.get("request_id") == rid]
    assert [(line["status"], line.get("key")) for line in access] == [(200, "reader"), (401, None)]
    logs = service.logs()
    for key in (WRITE_KEY, READ_KEY, "not-a-key"):
        assert key not in logs
        assert hashlib.sha256(key.encode()).hexdigest() not in logs


def test_key_ring_compares_every_stored_hash(monkeypatch):
    keys = tuple(
        ApiKey(f"k{n}", "read", hashlib.sha256(f"key-{n}".encode()).hexdigest()) for n in range(5)
    )
    ring = auth.KeyRing(keys)
    compared = []
    real = auth.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    assert ring.match("key-0") == keys[0]  # the first stored key matches ...
    assert len(compared) == 5  # ... and the others are compared all the same
    assert ring.match("key-4") == keys[4]
    assert ring.match("key-5") is None
    assert len(compared) == 15


def test_failure_table_counts_per_source_within_the_window(tmp_path):
    table = limits.FailureTable(tmp_path / "failures", limit=3, window=60)
    assert [table.record("10.0.0.1", now=100 + n) for n in range(3)] == [(None, False)] * 3
    assert table.record("10.0.0.1", now=103) == (57, True)  # over the limit: reported once
    assert table.record("10.0.0.1", now=110) == (50, False)
    assert table.record("10.0.0.2", now=110) == (None, False)  # another source is not held
    assert table.record("10.0.0.1", now=160) == (None, False)  # a new window
    # Another process opening the same file sees the same counts.
    other = limits.FailureTable(tmp_path / "failures", limit=3, window=60)
    assert other.record("10.0.0.1", now=161) == (None, False)
    assert table.record("10.0.0.1", now=162) == (None, False)
    assert other.record("10.0.0.1", now=163) == (57, True)


def test_failure_table_stays_one_size_whatever_the_sources(tmp_path):
    path = tmp_path / "failures"
    table = limits.FailureTable(path, limit=2, window=60)
    for n in range(20_000):
        table.record(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", now=1000)
    assert path.stat().st_size == limits.FAILURE_SLOTS * 16


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{", "APP_API_KEYS is not valid JSON"),
        ('{"name": "a"}', "APP_API_KEYS must be a JSON array"),
        ('["a"]', "APP_API_KEYS item 1 must be an object"),
        ('[{"name": "a b", "scope": "read", "sha256": "' + "0" * 64 + '"}]', "item 1: name must"),
        ('[{"name": "' + "n" * 65 + '", "scope": "read", "sha256": "' + "0" * 64 + '"}]', "name"),
        ('[{"name": "a", "scope": "admin", "sha256": "' + "0" * 64 + '"}]', "scope must be read"),
        ('[{"name": "a", "scope": "read", "sha256": "' + "A" * 64 + '"}]', "sha256 must be 64"),
        ('[{"name": "a", "scope": "read", "sha256": "abc"}]', "sha256 must be 64"),
        ('[{"name": "a", "scope": "read"}]', "sha256 must be 64"),
        ('[{"name": "a", "scope": "read", "sha256": "' + "0" * 64 + '", "key": "s3cret"}]', "key"),
        (
            '[{"name": "a", "scope": "read", "sha256": "' + "0" * 64 + '"}, '
            '{"name": "a", "scope": "write", "sha256": "' + "1" * 64 + '"}]',
            "item 2: the name 'a' is used twice",
        ),
    ],
)
def test_malformed_api_keys_are_a_configuration_error(value, message):
    with pytest.raises(ConfigError, match="APP_API_KEYS") as raised:
        load_settings({"APP_API_KEYS": value})
    assert message in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_a_key_pasted_for_its_hash_is_not_echoed():
    key = "x" * 43
    entry = [{"name": "pasted", "scope": "write", "sha256": key}]
    with pytest.raises(ConfigError) as raised:
        load_settings({"APP_API_KEYS": json.dumps(entry)})
    assert key not in str(raised.value)


def test_keys_are_parsed_with_names_scopes_and_hashes():
    settings = load_settings({"APP_API_KEYS": api_keys_json()})
    assert [(key.name, key.scope) for key in settings.api_keys] == [
        ("writer", "write"),
        ("reader", "read"),
    ]
    assert settings.api_keys[0].sha256 == hashlib.sha256(WRITE_KEY.encode()).hexdigest()
    assert load_settings({}).api_keys == ()
    assert load_settings({"APP_API_KEYS": "[]"}).api_keys == ()
    assert load_settings({}).auth_max_failures == 20
    assert load_settings({}).auth_failure_window_seconds == 60


def test_without_keys_the_service_starts_and_refuses_every_data_request(mongo, tmp_path):
    env = service_env(mongo.admin_uri, "nokeys", APP_API_KEYS="")
    with Gunicorn(env, tmp_path) as server:
        assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
        for method, path in DATA_REQUESTS:
            assert_refused(send(server.url, method, path, auth=WRITER), 401, "invalid_api_key")
        warnings = [
            json.loads(line) for line in server.logs().splitlines() if "APP_API_KEYS" in line
        ]
    assert warnings
    assert all(line["level"] == "WARNING" for line in warnings)


def request_from(source: str, port: int, key: str | None) -> http.client.HTTPResponse:
    """GET /data from the local address ``source`` (any of 127.0.0.0/8), on a new connection,
    so that either worker may answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    headers = {"Connection": "close"} | ({"Authorization": f"Bearer {key}"} if key else {})
    conn.request("GET", "/data?limit=1", headers=headers)
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    conn.close()
    return response


@pytest.fixture(scope="module")
def limited(
    mongo: Mongo, database_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gunicorn]:
    """A service that answers 429 after 5 failures within 4 s from one address."""
    env = service_env(
        mongo.admin_uri,
        database_name,
        APP_AUTH_MAX_FAILURES="5",
        APP_AUTH_FAILURE_WINDOW_SECONDS="4",
    )
    with Gunicorn(env, tmp_path_factory.mktemp("limited")) as server:
        yield server


def test_repeated_failures_from_one_address_get_429_while_valid_keys_pass(limited):
    source, bystander = "127.0.0.7", "127.0.0.8"
    # Several connections, so both workers answer: the count is the pod's, not a worker's.
    statuses = [request_from(source, limited.port, None).status for _ in range(5)]
    assert statuses == [401] * 5
    refused = request_from(source, limited.port, "wrong")
    assert refused.status == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 4
    assert json.loads(refused.body)["error"]["code"] == "too_many_failures"  # type: ignore[attr-defined]
    assert request_from(source, limited.port, None).status == 429
    # A valid key from the same address is served as usual, and does not reset the count.
    assert [request_from(source, limited.port, READ_KEY).status for _ in range(10)] == [200] * 10
    assert request_from(source, limited.port, None).status == 429
    # Another address is not held.
    assert request_from(bystander, limited.port, None).status == 401
    # Once the window has passed, the address is answered 401 again.
    time.sleep(int(refused.headers["Retry-After"]) + 0.5)
    assert request_from(source, limited.port, None).status == 401
    logged = [line for line in limited.logs().splitlines() if "too many failed attempts" in line]
    assert len(logged) == 1
    assert json.loads(logged[0])["remote"] == source


def test_many_failing_addresses_leave_the_table_its_size(limited):
    before = Path(limits.failures_path(limited.port)).stat().st_size
    for n in range(300):
        assert request_from(f"127.0.{1 + n // 250}.{1 + n % 250}", limited.port, None).status in (
            401,
            429,
        )
    assert Path(limits.failures_path(limited.port)).stat().st_size == before
    assert before == limits.FAILURE_SLOTS * 16
