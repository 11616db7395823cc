"""Fixtures of the local cluster's acceptance tests: kubectl, a test namespace, a local image.

The tests' own instance of the cluster must be up (``make cluster-up CLUSTER_INSTANCE=test``);
``tests/cluster/run.sh`` brings it up, runs these tests and takes it down again. Tests marked
``network_exposure`` run after the cluster's NodePorts were exposed on the host's addresses,
those marked ``second_cluster`` on the cluster brought up after the first one was taken down.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KUBECONFIG = os.environ.get(
    "FLASK_K8S_KUBECONFIG", "/var/lib/flask-k8s/test/cluster/admin.kubeconfig"
)
CONTEXT = "flask-k8s-local"
CONTAINERD = os.environ.get(
    "FLASK_K8S_CONTAINERD_ADDRESS", "/run/flask-k8s/test/containerd/containerd.sock"
)
VOLUMES_DIR = Path(os.environ.get("FLASK_K8S_VOLUMES_DIR", "/var/lib/flask-k8s/test/volumes"))
NAMESPACE = "cluster-acceptance"
PROBE_IMAGE = "flask-k8s/cluster-probe:test"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "second_cluster: runs on the cluster brought up after a cluster-down"
    )
    config.addinivalue_line(
        "markers",
        "network_exposure: runs once the cluster's NodePorts answer on the host's addresses"
        " (local_cluster_api_exposure: network)",
    )


def _kubectl_path() -> str:
    explicit = os.environ.get("FLASK_K8S_KUBECTL")
    if explicit:
        return explicit
    out = subprocess.run(
        [str(REPO / "cluster" / "build.sh"), "kubectl"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()[1]


class Kubectl:
    """Runs the kubectl built with the cluster against its admin kubeconfig."""

    def __init__(self, path: str) -> None:
        self.path = path

    def run(self, *args: str, stdin: str | None = None, check: bool = True, timeout: int = 120):
        cmd = [self.path, "--kubeconfig", KUBECONFIG, "--context", CONTEXT, *args]
        result = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        return self.run(*args, stdin=stdin).stdout

    def apply(self, *manifests: dict) -> None:
        self(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(manifests)}),
        )

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "-o", "json"))


def as_nobody(*cmd: str) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` as the unprivileged local user nobody: what any account on the host can do."""
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", *cmd], capture_output=True, text=True, check=False
    )


def eventually(check: Callable[[], object], timeout: float = 120, interval: float = 2):
    """Call ``check`` until it returns a true value without raising; return that value."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (AssertionError, OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last error: {last}")


@pytest.fixture(scope="session")
def kubectl() -> Kubectl:
    if not Path(KUBECONFIG).exists():
        pytest.fail(f"no cluster: {KUBECONFIG} is missing (run `make cluster-up`)")
    return Kubectl(_kubectl_path())


@pytest.fixture(scope="session")
def namespace(kubectl: Kubectl) -> Iterator[str]:
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    yield NAMESPACE
    kubectl.run("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s", check=False)


@pytest.fixture(scope="session")
def probe_image() -> str:
    """Build the probe image on this machine and import it into the cluster's containerd."""
    if not shutil.which("docker"):
        pytest.fail("docker is needed to build the test image")
    with tempfile.TemporaryDirectory() as context:
        subprocess.run(
            ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", f"{context}/probe", "."],
            cwd=REPO / "tests" / "cluster" / "probe",
            env={**os.environ, "CGO_ENABLED": "0"},
            check=True,
        )
        shutil.copy(REPO / "tests" / "cluster" / "Dockerfile.probe", f"{context}/Dockerfile")
        subprocess.run(["docker", "build", "-q", "-t", PROBE_IMAGE, context], check=True)
    save = subprocess.Popen(["docker", "save", PROBE_IMAGE], stdout=subprocess.PIPE)
    subprocess.run(
        ["ctr", "-a", CONTAINERD, "-n", "k8s.io", "images", "import", "-"],
        stdin=save.stdout,
        check=True,
        capture_output=True,
    )
    assert save.wait() == 0
    return PROBE_IMAGE


def probe_pod(name: str, image: str, args: list[str], **spec: object) -> dict:
    """A pod running the probe with ``args``, locked down like the project's workloads."""
    container = {
        "name": "probe",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
    }
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "spec": {
            "restartPolicy": spec.pop("restartPolicy", "Never"),
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "fsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            **spec,
        },
    }
