"""HTTPS on the public port with APP_TLS_CERT_FILE and APP_TLS_KEY_FILE: a client that trusts
the CA is served, one that does not is refused, plain HTTP gets nothing; metrics stay plain
HTTP on their own port; a connection that never completes its handshake is closed."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests
from conftest import Mongo, service_env
from support import READER, WRITER, Gunicorn, throwaway_pki


@pytest.fixture(scope="module", params=["gevent", "gthread"])
def https(
    request: pytest.FixtureRequest,
    mongo: Mongo,
    database_name: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gunicorn]:
    work = tmp_path_factory.mktemp(f"tls-{request.param}")
    ca, cert, key = throwaway_pki(work)
    env = service_env(
        mongo.admin_uri,
        database_name,
        APP_TLS_CERT_FILE=str(cert),
        APP_TLS_KEY_FILE=str(key),
        GUNICORN_WORKER_CLASS=request.param,
    )
    with Gunicorn(env, work, ca_file=ca) as server:
        yield server


def test_a_client_trusting_the_ca_is_served_over_https(https):
    assert https.url.startswith("https://")
    verify = str(https.ca_file)
    created = requests.post(
        f"{https.url}/data", json={"over": "tls"}, auth=WRITER, verify=verify, timeout=10
    )
    assert created.status_code == 201, created.text
    fetched = requests.get(
        f"{https.url}/data/{created.json()['id']}", auth=READER, verify=verify, timeout=10
    )
    assert fetched.json()["data"] == {"over": "tls"}
    assert requests.get(f"{https.url}/healthz", verify=verify, timeout=10).status_code == 200


def test_a_client_that_does_not_trust_the_ca_is_refused(https):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{https.url}/healthz", timeout=10)


def test_plain_http_on_the_https_port_gets_no_answer(https):
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{https.port}/healthz", timeout=10)
    if https.env["GUNICORN_WORKER_CLASS"] == "gevent":
        # One line of the log says so; no traceback.
        deadline = time.monotonic() + 5
        while "TLS handshake with 127.0.0.1 failed" not in https.logs():
            assert time.monotonic() < deadline, https.logs()[-2000:]
            time.sleep(0.1)
        assert "Traceback" not in https.logs()


def test_metrics_stay_plain_http_on_their_port(https):
    response = requests.get(https.metrics_url, timeout=10)
    assert response.status_code == 200
    assert "flaskapp_http_requests_total" in response.text


def test_a_connection_that_never_shakes_hands_is_closed(https):
    if https.env["GUNICORN_WORKER_CLASS"] != "gevent":
        pytest.skip("gthread shakes hands in a thread without a time limit")
    sock = socket.create_connection(("127.0.0.1", https.port), timeout=60)
    began = time.monotonic()
    try:
        closed = sock.recv(1) == b""
    except ConnectionResetError:
        closed = True
    elapsed = time.monotonic() - began
    sock.close()
    assert closed
    print(f"silent TLS connection closed after {elapsed:.1f} s")
