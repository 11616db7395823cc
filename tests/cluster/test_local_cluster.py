"""Acceptance tests of the local single-node cluster (``make test-cluster``)."""

from __future__ import annotations

import re
import urllib.request

import pytest
from conftest import NAMESPACE, REPO, Kubectl, eventually, probe_pod

PINNED_VERSION = re.search(
    r"^KUBERNETES_VERSION=(\S+)$", (REPO / "cluster" / "versions.env").read_text(), re.M
).group(1)


def wait_pod_phase(kubectl: Kubectl, name: str, phases: tuple[str, ...], timeout: int = 120) -> str:
    def phase() -> str | None:
        value = kubectl("get", "pod", "-n", NAMESPACE, name, "-o", "jsonpath={.status.phase}")
        return value if value in phases else None

    return eventually(phase, timeout=timeout)


def run_to_completion(kubectl: Kubectl, pod: dict, timeout: int = 120) -> str:
    """Create ``pod``, wait until it ends, return its log; fail when it did not succeed."""
    name = pod["metadata"]["name"]
    kubectl.run("delete", "pod", "-n", NAMESPACE, name, "--ignore-not-found", "--wait=true")
    kubectl.apply(pod)
    phase = wait_pod_phase(kubectl, name, ("Succeeded", "Failed"), timeout)
    log = kubectl("logs", "-n", NAMESPACE, name, "-c", "probe")
    assert phase == "Succeeded", f"pod {name} {phase}: {log}"
    return log


def test_node_is_ready_and_runs_the_pinned_version(kubectl: Kubectl) -> None:
    nodes = kubectl.json("get", "nodes")["items"]
    assert len(nodes) == 1
    node = nodes[0]
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    kubelet = node["status"]["nodeInfo"]["kubeletVersion"]
    print(f"node {node['metadata']['name']} Ready={ready} kubelet={kubelet}")
    assert ready == "True"
    assert node["status"]["nodeInfo"]["kubeletVersion"] == PINNED_VERSION
    versions = kubectl.json("version")
    print(
        f"kubectl version: client {versions['clientVersion']['gitVersion']}, "
        f"server {versions['serverVersion']['gitVersion']}"
    )
    assert versions["serverVersion"]["gitVersion"] == PINNED_VERSION
    assert versions["clientVersion"]["gitVersion"] == PINNED_VERSION


def test_pod_from_a_locally_built_image_runs(
    kubectl: Kubectl, namespace: str, probe_image: str
) -> None:
    pod = probe_pod("local-image", probe_image, ["sleep"], restartPolicy="Always")
    kubectl.apply(pod)
    assert wait_pod_phase(kubectl, "local-image", ("Running",)) == "Running"
    image = kubectl(
        "get",
        "pod",
        "-n",
        namespace,
        "local-image",
        "-o",
        "jsonpath={.status.containerStatuses[0].image}",
    )
    print(f"pod local-image Running from {image}")
    assert image.endswith(probe_image)


def test_dns_resolves_the_api_and_a_service_name(
    kubectl: Kubectl, namespace: str, probe_image: str
) -> None:
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "dns-target", "namespace": namespace},
            "spec": {
                "selector": {"app": "dns-target"},
                "ports": [{"port": 80, "targetPort": 8080}],
            },
        }
    )
    api_ip = kubectl(
        "get", "service", "-n", "default", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"
    )
    target_ip = kubectl(
        "get", "service", "-n", namespace, "dns-target", "-o", "jsonpath={.spec.clusterIP}"
    )
    log = run_to_completion(
        kubectl,
        probe_pod(
            "dns-lookup",
            probe_image,
            [
                "lookup",
                "kubernetes.default.svc.cluster.local",
                "dns-target",
                f"dns-target.{namespace}.svc.cluster.local",
            ],
        ),
    )
    print(log.strip())
    answers = dict(line.split(" ", 1) for line in log.strip().splitlines())
    assert answers["kubernetes.default.svc.cluster.local"].split() == [api_ip]
    assert answers["dns-target"].split() == [target_ip]
    assert answers[f"dns-target.{namespace}.svc.cluster.local"].split() == [target_ip]


def test_pvc_binds_and_data_survive_the_pod(
    kubectl: Kubectl, namespace: str, probe_image: str
) -> None:
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": namespace},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "64Mi"}},
            },
        }
    )
    eventually(
        lambda: (
            kubectl("get", "pvc", "-n", namespace, "data", "-o", "jsonpath={.status.phase}")
            == "Bound"
        ),
        timeout=60,
    )
    sc = kubectl("get", "pvc", "-n", namespace, "data", "-o", "jsonpath={.spec.storageClassName}")
    print(f"PVC data Bound (StorageClass {sc})")
    volume = {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}
    mount = {"volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    # Host-path volumes belong to root (mode 0750): an init container hands the directory
    # to the pod's user, as charts do for such provisioners.
    init = {
        "initContainers": [
            {
                "name": "volume-permissions",
                "image": probe_image,
                "imagePullPolicy": "IfNotPresent",
                "args": ["chown", "65532:65532", "/data"],
                "securityContext": {
                    "runAsUser": 0,
                    "runAsNonRoot": False,
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
                },
                **mount,
            }
        ]
    }
    run_to_completion(
        kubectl,
        probe_pod(
            "pvc-writer",
            probe_image,
            ["write", "/data/survivor.txt", "written before"],
            container=mount,
            **volume,
            **init,
        ),
    )
    kubectl("delete", "pod", "-n", namespace, "pvc-writer", "--wait=true")
    log = run_to_completion(
        kubectl,
        probe_pod(
            "pvc-reader", probe_image, ["cat", "/data/survivor.txt"], container=mount, **volume
        ),
    )
    print(f"file read back by a new pod: {log!r}")
    assert log == "written before"


def test_kubectl_top_pods_returns_numbers(kubectl: Kubectl) -> None:
    def top() -> str | None:
        result = kubectl.run("top", "pods", "-n", "kube-system", "--no-headers", check=False)
        lines = result.stdout.strip().splitlines()
        ok = (
            result.returncode == 0
            and lines
            and all(re.fullmatch(r"\S+\s+\d+m\s+\d+Mi", line.strip()) for line in lines)
        )
        return result.stdout if ok else None

    out = eventually(top, timeout=150, interval=5)
    print(out.strip())


def test_nodeport_answers_from_the_host(kubectl: Kubectl, namespace: str, probe_image: str) -> None:
    kubectl.apply(
        probe_pod(
            "web",
            probe_image,
            ["serve", ":8080"],
            restartPolicy="Always",
            container={
                "ports": [{"containerPort": 8080, "name": "http"}],
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 2},
            },
        ),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "type": "NodePort",
                "selector": {"app": "web"},
                "ports": [{"port": 80, "targetPort": 8080}],
            },
        },
    )
    kubectl("wait", "-n", namespace, "pod/web", "--for=condition=Ready", "--timeout=120s")
    node_port = kubectl(
        "get", "service", "-n", namespace, "web", "-o", "jsonpath={.spec.ports[0].nodePort}"
    )
    node_ip = kubectl(
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[0].status.addresses[?(@.type=='InternalIP')].address}",
    )
    for address in (node_ip, "127.0.0.1"):
        url = f"http://{address}:{node_port}/"

        def get(url: str = url) -> str:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()

        body = eventually(get, timeout=60)
        print(f"GET {url} -> {body.strip()}")
        assert body.startswith("probe web")


@pytest.mark.parametrize("name", ["coredns", "metrics-server"])
def test_addons_run_from_locally_built_images(kubectl: Kubectl, name: str) -> None:
    image = kubectl(
        "get",
        "deployment",
        "-n",
        "kube-system",
        name,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    )
    assert image.startswith(f"docker.io/flask-k8s/{name}:")
    kubectl(
        "wait",
        "-n",
        "kube-system",
        f"deployment/{name}",
        "--for=condition=Available",
        "--timeout=60s",
    )


def test_nothing_is_pulled(kubectl: Kubectl) -> None:
    events = kubectl("get", "events", "-A", "--field-selector", "reason=Pulling", "-o", "name")
    assert events.strip() == ""
