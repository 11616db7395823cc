"""The real Dockerfile: built on the local base image, run against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
from pymongo import uri_parser
from support import REPO, SUMMARY, WRITER, api_keys_json, free_port

# A cold machine installs docker.io, debootstraps the base image and pip-installs the
# requirements during the first test's set-up.
pytestmark = pytest.mark.timeout(1200)

IMAGE = "flask-k8s/flaskapp:test"
# The metrics endpoint of each running container, by name.
METRICS_URLS: dict[str, str] = {}
BASE_IMAGE = os.environ.get("BASE_IMAGE", "flask-k8s/python-base:bookworm")


def run(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, check=True, capture_output=True, text=True, timeout=timeout, **kwargs
    )


@pytest.fixture(scope="module")
def docker_engine() -> Iterator[None]:
    state = run(str(REPO / "scripts" / "docker-engine.sh"), "ensure").stdout.strip()
    yield
    if state == "started":
        run(str(REPO / "scripts" / "docker-engine.sh"), "stop")


@pytest.fixture(scope="module")
def image(docker_engine) -> str:
    run(str(REPO / "scripts" / "build-base-image.sh"), timeout=900)
    started = time.monotonic()
    run(
        "docker",
        "build",
        "--build-arg",
        f"BASE_IMAGE={BASE_IMAGE}",
        "-t",
        IMAGE,
        str(REPO),
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        timeout=900,
    )
    size = int(run("docker", "image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    SUMMARY.append(
        f"image {IMAGE} (base {BASE_IMAGE}): {size / 1e6:.1f} MB, "
        f"docker build took {time.monotonic() - started:.1f} s"
    )
    return IMAGE


@pytest.fixture(scope="module")
def container(image, mongo, tmp_path_factory) -> Iterator[tuple[str, str]]:
    port = free_port()
    metrics_port = free_port()
    name = f"flaskapp-test-{uuid.uuid4().hex[:8]}"
    database = f"container_{uuid.uuid4().hex[:8]}"
    # Host networking: the container reaches the test database on 127.0.0.1, and the test
    # reaches the container's port there. Read-only root with only /tmp writable, as in the
    # Kubernetes pod.
    run(
        "docker",
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--memory",
        "500m",
        "--cpus",
        "0.5",
        "-e",
        f"MONGODB_URI={mongo.admin_uri}",
        "-e",
        f"MONGODB_DATABASE={database}",
        "-e",
        f"PORT={port}",
        "-e",
        f"APP_METRICS_PORT={metrics_port}",
        "-e",
        f"APP_API_KEYS={api_keys_json()}",
        image,
    )
    url = f"http://127.0.0.1:{port}"
    METRICS_URLS[name] = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
                pytest.fail(f"container not ready:\n{logs.stdout}{logs.stderr}")
            time.sleep(0.5)
        yield name, url
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        with mongo.client() as client:
            client.drop_database(database)


def test_post_and_get_over_http(container):
    _, url = container
    created = requests.post(f"{url}/data", json={"from": "container"}, timeout=10, auth=WRITER)
    assert created.status_code == 201
    record_id = created.json()["id"]
    fetched = requests.get(f"{url}/data/{record_id}", timeout=10, auth=WRITER).json()
    assert fetched["data"] == {"from": "container"}
    listed = requests.get(f"{url}/data", timeout=10, auth=WRITER).json()
    assert listed["items"][0]["id"] == record_id


def test_metrics_are_served_on_their_own_port_only(container):
    name, url = container
    requests.get(f"{url}/healthz", timeout=10)
    metrics = requests.get(METRICS_URLS[name], timeout=10)
    assert metrics.status_code == 200
    assert 'flaskapp_http_requests_total{method="GET",route="/healthz",status="200"}' in (
        metrics.text
    )
    assert requests.get(f"{url}/metrics", timeout=10).status_code == 404


def test_data_needs_a_key(container):
    _, url = container
    refused = requests.get(f"{url}/data", timeout=10)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"


def test_runs_as_non_root_user(image, container):
    name, _ = container
    assert (
        run("docker", "image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
        == "10001:10001"
    )
    assert run("docker", "exec", name, "id", "-u").stdout.strip() == "10001"
    processes = run("docker", "top", name, "-o", "pid,uid,args").stdout.splitlines()[1:]
    assert processes
    assert all(line.split()[1] == "10001" for line in processes), processes


def test_memory_fits_the_pod_limit_after_load(container):
    name, url = container
    session = requests.Session()
    session.auth = WRITER
    for n in range(300):
        session.post(f"{url}/data", json={"n": n, "pad": "x" * 1000}, timeout=10)
        if n % 10 == 0:
            session.get(f"{url}/data?limit=50", timeout=30)
    usage = run("docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", name).stdout
    used = usage.split("/")[0].strip()
    value, unit = float(used[:-3]), used[-3:]
    mib = value * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]
    SUMMARY.append(f"container memory after 300 writes and 30 listings: {mib:.0f} MiB")
    assert mib < 300, usage


def test_logs_are_json_lines(container):
    name, url = container
    requests.get(f"{url}/", headers={"X-Request-ID": "container-log"}, timeout=10)
    time.sleep(0.5)
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
    lines = [json.loads(line) for line in (logs.stdout + logs.stderr).splitlines() if line]
    assert any(line.get("request_id") == "container-log" for line in lines)


def test_final_stage_has_no_compiler_or_pip(image):
    probe = run(
        "docker",
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        image,
        "-c",
        "for t in gcc cc g++ make pip pip3; do command -v $t || true; done",
    )
    assert probe.stdout.strip() == ""


def test_provisioning_cli_runs_from_the_image(image, mongo, docker_engine):
    parsed = uri_parser.parse_uri(mongo.admin_uri)
    database = f"prov_{uuid.uuid4().hex[:8]}"
    env = {
        "MONGODB_HOST": "127.0.0.1" if mongo.host in ("localhost", "127.0.0.1") else mongo.host,
        "MONGODB_PORT": str(mongo.port),
        "MONGODB_DATABASE": database,
        "MONGODB_USERNAME": "appuser",
        "MONGODB_PASSWORD": "container-secret",
        "MONGODB_ADMIN_USERNAME": parsed["username"],
        "MONGODB_ADMIN_PASSWORD": parsed["password"],
        "MONGODB_ADMIN_AUTH_SOURCE": parsed["options"].get("authSource", "admin"),
    }
    args = ["docker", "run", "--rm", "--network", "host", "--read-only"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    try:
        result = run(*args, image, "python", "-m", "flaskapp.provision")
        assert f"user 'appuser' on database '{database}': created" in result.stdout
        assert "container-secret" not in result.stdout + result.stderr
    finally:
        with mongo.client() as client:
            client[database].command("dropUser", "appuser")
            client.drop_database(database)
