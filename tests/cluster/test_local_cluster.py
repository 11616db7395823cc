"""Acceptance tests of the local single-node cluster (``make test-cluster``)."""

from __future__ import annotations

import re
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import NAMESPACE, REPO, VOLUMES_DIR, Kubectl, as_nobody, eventually, probe_pod

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


KEPT_CLAIM = "kept"
KEPT_TEXT = "written on the first cluster"


def claim(kubectl: Kubectl, name: str) -> dict:
    manifest = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}},
    }
    kubectl.apply(manifest)
    return {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": name}}]}


DATA_MOUNT = {"volumeMounts": [{"name": "data", "mountPath": "/data"}]}


def read_kept_file(kubectl: Kubectl, probe_image: str, volume: dict) -> str:
    """What a new pod reads from the file on the claim `kept`."""
    return run_to_completion(
        kubectl,
        probe_pod(
            "volume-reader",
            probe_image,
            ["cat", "/data/survivor.txt"],
            container=DATA_MOUNT,
            **volume,
        ),
    )


def host_mode(path: Path) -> str:
    info = path.stat()
    return f"{info.st_uid}:{info.st_gid} {stat.S_IMODE(info.st_mode):o}"


def test_a_non_root_pod_writes_to_its_volume_which_is_root_owned_and_private(
    kubectl: Kubectl, namespace: str, probe_image: str
) -> None:
    """No init container: the kubelet hands the `local` volume to the pod's fsGroup."""
    volume = claim(kubectl, KEPT_CLAIM)
    run_to_completion(
        kubectl,
        probe_pod(
            "volume-writer",
            probe_image,
            ["write", "/data/survivor.txt", KEPT_TEXT],
            container=DATA_MOUNT,
            **volume,
        ),
    )
    pvc = kubectl.json("get", "pvc", "-n", namespace, KEPT_CLAIM)
    pv = kubectl.json("get", "pv", pvc["spec"]["volumeName"])
    print(
        f"claim {KEPT_CLAIM} {pvc['status']['phase']} in StorageClass "
        f"{pvc['spec']['storageClassName']}: {pv['spec']['local']['path']}, "
        f"reclaim policy {pv['spec']['persistentVolumeReclaimPolicy']}"
    )
    path = VOLUMES_DIR / namespace / KEPT_CLAIM
    assert pvc["status"]["phase"] == "Bound"
    assert pv["spec"]["local"]["path"] == str(path)
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    modes = {p: host_mode(p) for p in (VOLUMES_DIR, VOLUMES_DIR / namespace, path)}
    print("on the host: " + ", ".join(f"{p} {mode}" for p, mode in modes.items()))
    assert modes[VOLUMES_DIR] == "0:0 700"
    assert modes[VOLUMES_DIR / namespace] == "0:0 700"
    # The pod's fsGroup (65532), group-writable and setgid: the kubelet's doing.
    assert modes[path] == "0:65532 2770"
    assert (path / "survivor.txt").read_text() == KEPT_TEXT

    kubectl("delete", "pod", "-n", namespace, "volume-writer", "--wait=true")
    log = read_kept_file(kubectl, probe_image, volume)
    print(f"file read back by a new pod: {log!r}")
    assert log == KEPT_TEXT


def test_a_local_user_cannot_reach_the_volumes() -> None:
    result = as_nobody("ls", str(VOLUMES_DIR))
    print(f"ls {VOLUMES_DIR} as nobody: exit {result.returncode}, {result.stderr.strip()}")
    assert result.returncode != 0
    assert "Permission denied" in result.stderr


@pytest.mark.second_cluster
def test_a_claim_recreated_on_a_new_cluster_finds_its_data(
    kubectl: Kubectl, namespace: str, probe_image: str
) -> None:
    log = read_kept_file(kubectl, probe_image, claim(kubectl, KEPT_CLAIM))
    print(f"read on the new cluster from claim {KEPT_CLAIM}: {log!r}")
    assert log == KEPT_TEXT


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


def serve_web(kubectl: Kubectl, namespace: str, probe_image: str) -> tuple[str, str]:
    """A pod answering HTTP behind the NodePort Service `web`: (node address, node port)."""
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
    return node_ip, node_port


def get_web(url: str) -> str:
    def get() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    body = eventually(get, timeout=60)
    print(f"GET {url} -> {body.strip()}")
    return body


def test_nodeports_answer_on_loopback_only(
    kubectl: Kubectl, namespace: str, probe_image: str
) -> None:
    """local_cluster_api_exposure: loopback, the default."""
    node_ip, node_port = serve_web(kubectl, namespace, probe_image)
    assert get_web(f"http://127.0.0.1:{node_port}/").startswith("probe web")
    with pytest.raises((urllib.error.URLError, OSError)) as refused:
        urllib.request.urlopen(f"http://{node_ip}:{node_port}/", timeout=5)
    print(f"GET http://{node_ip}:{node_port}/ -> {refused.value}")


@pytest.mark.network_exposure
def test_nodeports_answer_on_the_host_addresses_when_exposed(
    kubectl: Kubectl, namespace: str, probe_image: str
) -> None:
    """local_cluster_api_exposure: network."""
    node_ip, node_port = serve_web(kubectl, namespace, probe_image)
    for address in (node_ip, "127.0.0.1"):
        assert get_web(f"http://{address}:{node_port}/").startswith("probe web")


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
