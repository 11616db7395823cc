"""What the flaskapp role renders works with the real service: the pod's environment, the API
keys' Secret and the certificate's Secret, given to gunicorn started as the pod starts it (its
configuration file, the Deployment's variables), with no database behind it (a request that
passes the key check then answers 503)."""

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ansible_support import REPO, one

APP = REPO / "app"
COMBINATION = "mongodb-existing-hpa"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def decoded(documents: list, name: str, key: str) -> str:
    return base64.b64decode(one(documents, "Secret", name)["data"][key]).decode()


def pod_environment(documents: list, tls_dir: Path) -> dict[str, str]:
    """The Deployment's variables, with each secretKeyRef read from the rendered Secret and the
    certificate's mount in `tls_dir`."""
    container = one(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    (mount,) = [mount for mount in container["volumeMounts"] if mount["name"] == "tls"]
    environment = {}
    for item in container["env"]:
        if "value" in item:
            environment[item["name"]] = item["value"].replace(mount["mountPath"], str(tls_dir))
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            environment[item["name"]] = decoded(documents, ref["name"], ref["key"])
    return environment


@pytest.fixture(scope="module")
def service(manifests, tmp_path_factory, vault):
    documents = manifests[COMBINATION]
    workdir = tmp_path_factory.mktemp("service")
    tls_dir = workdir / "tls"
    tls_dir.mkdir()
    for key in ("tls.crt", "tls.key"):
        (tls_dir / key).write_text(decoded(documents, "flask-tls", key))
        (tls_dir / key).chmod(0o600)
    ca_file = workdir / "ca.crt"
    ca_file.write_text(one(documents, "ConfigMap", "flask-tls-ca")["data"]["ca.crt"])
    port, metrics_port = free_port(), free_port()
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("APP_")},
        **pod_environment(documents, tls_dir),
        "PYTHONPATH": str(APP),
        "PORT": str(port),
        "APP_METRICS_PORT": str(metrics_port),
        # No database: a port nothing listens on, given up on quickly.
        "MONGODB_HOST": "127.0.0.1",
        "MONGODB_PORT": str(free_port()),
        "MONGODB_TIMEOUT_MS": "500",
        "GUNICORN_WORKERS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
    }
    log = (workdir / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [
            Path(sys.executable).parent / "gunicorn",
            "--config",
            APP / "gunicorn.conf.py",
            "flaskapp.wsgi:app",
        ],
        cwd=APP,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    context = ssl.create_default_context(cafile=ca_file)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=context, timeout=5)
            break
        except (OSError, urllib.error.URLError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"gunicorn did not serve: {(workdir / 'gunicorn.log').read_text()}")
            time.sleep(0.5)
    keys = {entry["name"]: entry["key"] for entry in vault.values["vault_flaskapp_api_keys"]}
    yield {
        "port": port,
        "metrics_port": metrics_port,
        "context": context,
        "keys": keys,
        "log": workdir / "gunicorn.log",
    }
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


def status(service, path: str, method: str = "GET", key: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"https://127.0.0.1:{service['port']}{path}",
        method=method,
        data=b"{}" if method == "POST" else None,
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {key}"} if key else {}),
    )
    try:
        with urllib.request.urlopen(request, context=service["context"], timeout=30) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def test_the_keys_of_the_vault_open_the_api_by_their_scope(service):
    keys = service["keys"]
    # Past the key check the service finds no database: 503, never 401 or 403.
    assert status(service, "/data", key=keys["writer"])[0] == 503
    assert status(service, "/data", key=keys["reader"])[0] == 503
    assert status(service, "/data", "POST", key=keys["writer"])[0] == 503
    assert status(service, "/data", "POST", key=keys["reader"])[0] == 403
    code, headers = status(service, "/data")
    assert code == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert status(service, "/data", key="k" * 43)[0] == 401
    log = service["log"].read_text()
    for key in keys.values():
        assert key not in log


def test_the_certificate_serves_https_to_a_client_that_trusts_the_ca(service):
    for host in ("127.0.0.1", "localhost"):
        with urllib.request.urlopen(
            f"https://{host}:{service['port']}/", context=service["context"], timeout=30
        ) as response:
            assert json.loads(response.read())["message"].startswith("Welcome")
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(
            f"https://127.0.0.1:{service['port']}/", context=ssl.create_default_context()
        )


def test_metrics_answer_on_their_port_and_not_on_the_service_port(service):
    assert status(service, "/metrics")[0] == 404
    with urllib.request.urlopen(
        f"http://127.0.0.1:{service['metrics_port']}/metrics", timeout=30
    ) as response:
        assert b"flaskapp_http_requests_total" in response.read()
