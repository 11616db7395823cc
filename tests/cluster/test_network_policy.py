"""NetworkPolicy enforced on the local cluster by the network_policy role (kube-router).

The module's fixture runs the role against the cluster of conftest.py; the engine stays up
afterwards, so the teardown that follows (tests/cluster/run.sh) also checks that nothing of it
is left on the host.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CONTAINERD, CONTEXT, KUBECONFIG, REPO, Kubectl, eventually, probe_pod

NAMESPACE = "netpol-acceptance"
ENGINE = ("kube-system", "app.kubernetes.io/name=kube-router")
# An address of the host's own (link-local /30) for a client outside the cluster, in a network
# namespace made by the test: NodePort traffic from there keeps its source address up to the
# pod's firewall, as traffic from another machine would.
OUTSIDE_LINK = "fk8snp0"
OUTSIDE_HOST, OUTSIDE_CLIENT = "169.254.77.1", "169.254.77.2"


@pytest.fixture(scope="module")
def engine(kubectl: Kubectl) -> str:
    """Run the role once; return the name of the engine's pod."""
    start = time.monotonic()
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "tests/cluster/network-policy.yml",
            "-e",
            f"network_policy_kubeconfig={KUBECONFIG}",
            "-e",
            f"network_policy_context={CONTEXT}",
            "-e",
            "network_policy_image_delivery=containerd",
            "-e",
            f"network_policy_image_target={CONTAINERD}",
        ],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "ANSIBLE_CONFIG"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    print(f"network_policy role applied in {time.monotonic() - start:.1f}s")
    return engine_pod(kubectl)


def engine_pod(kubectl: Kubectl) -> str:
    pods = kubectl.json("get", "pods", "-n", ENGINE[0], "-l", ENGINE[1])["items"]
    ready = [
        p["metadata"]["name"]
        for p in pods
        if p["metadata"].get("deletionTimestamp") is None
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    ]
    assert len(ready) == 1, [p["metadata"]["name"] for p in pods]
    return ready[0]


@pytest.fixture(scope="module")
def netpol_ns(kubectl: Kubectl, engine: str, probe_image: str) -> Iterator[str]:
    """A namespace with a server (app=server) and two clients, one labelled role=client."""
    kubectl.run("wait", "--for=delete", f"namespace/{NAMESPACE}", "--timeout=120s", check=False)
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    serve = {
        "ports": [{"containerPort": 8080, "name": "http"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 2},
    }
    pods = [
        probe_pod(
            "server", probe_image, ["serve", ":8080"], restartPolicy="Always", container=serve
        ),
        probe_pod("client", probe_image, ["sleep"], restartPolicy="Always"),
        probe_pod("stranger", probe_image, ["sleep"], restartPolicy="Always"),
    ]
    pods[1]["metadata"]["labels"]["role"] = "client"
    for pod in pods:
        pod["metadata"]["namespace"] = NAMESPACE
    kubectl.apply(*pods)
    kubectl("wait", "-n", NAMESPACE, "pod", "--all", "--for=condition=Ready", "--timeout=120s")
    yield NAMESPACE
    kubectl.run("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s", check=False)


def pod_ip(kubectl: Kubectl, name: str) -> str:
    return kubectl("get", "pod", "-n", NAMESPACE, name, "-o", "jsonpath={.status.podIP}")


def reaches(kubectl: Kubectl, client: str, url: str) -> bool:
    """Whether pod ``client`` gets an answer from ``url`` (a rejected connection is False)."""
    result = kubectl.run("exec", "-n", NAMESPACE, client, "--", "/probe", "get", url, check=False)
    return result.returncode == 0 and result.stdout.startswith("probe ")


def seconds_until(condition, timeout: float = 30) -> float:
    """Poll ``condition`` until it is true; return the seconds it took."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"not true within {timeout}s"
        time.sleep(0.1)
    return time.monotonic() - start


def policy(name: str, selector: dict, ingress: list | None) -> dict:
    spec: dict = {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress"]}
    if ingress is not None:
        spec["ingress"] = ingress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def admit_clients(label: dict) -> dict:
    return policy(
        "server-from-clients",
        {"app": "server"},
        [{"from": [{"podSelector": {"matchLabels": label}}], "ports": [{"port": 8080}]}],
    )


def test_policy_admits_the_labelled_pod_and_rejects_the_other(kubectl, netpol_ns):
    url = f"http://{pod_ip(kubectl, 'server')}:8080/"
    assert reaches(kubectl, "stranger", url), "without a policy every pod is admitted"
    kubectl.apply(admit_clients({"role": "client"}))
    took = seconds_until(lambda: not reaches(kubectl, "stranger", url))
    print(f"new policy enforced {took:.2f}s after kubectl apply returned")
    assert reaches(kubectl, "client", url)
    assert not reaches(kubectl, "stranger", url)


def test_a_policy_change_takes_effect_within_seconds(kubectl, netpol_ns):
    url = f"http://{pod_ip(kubectl, 'server')}:8080/"
    kubectl.apply(admit_clients({"role": "client"}))
    eventually(lambda: reaches(kubectl, "client", url), timeout=30, interval=0.5)
    kubectl.apply(admit_clients({"role": "nobody"}))
    revoked = seconds_until(lambda: not reaches(kubectl, "client", url))
    kubectl.apply(admit_clients({"role": "client"}))
    restored = seconds_until(lambda: reaches(kubectl, "client", url))
    print(f"policy change enforced after {revoked:.2f}s (revoke) and {restored:.2f}s (admit)")
    assert revoked < 10
    assert restored < 10


@pytest.fixture
def outside_client() -> Iterator[list[str]]:
    """A client outside the node: a network namespace of its own (held by a sleeping process,
    not named under /run/netns, where the pods' namespaces live) wired to the host by a veth
    pair. Yields the command prefix that runs a program in it."""
    holder = subprocess.Popen(["unshare", "--net", "sleep", "600"])
    enter = ["nsenter", f"--net=/proc/{holder.pid}/ns/net"]
    steps = [
        [
            "ip",
            "link",
            "add",
            OUTSIDE_LINK,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            str(holder.pid),
        ],
        ["ip", "addr", "add", f"{OUTSIDE_HOST}/30", "dev", OUTSIDE_LINK],
        ["ip", "link", "set", OUTSIDE_LINK, "up"],
        [*enter, "ip", "addr", "add", f"{OUTSIDE_CLIENT}/30", "dev", "eth0"],
        [*enter, "ip", "link", "set", "eth0", "up"],
        [*enter, "ip", "route", "add", "default", "via", OUTSIDE_HOST],
    ]
    try:
        eventually(
            lambda: os.readlink(f"/proc/{holder.pid}/ns/net") != os.readlink("/proc/self/ns/net"),
            10,
            0.1,
        )
        for step in steps:
            subprocess.run(step, check=True, capture_output=True)
        yield enter
    finally:
        holder.kill()
        holder.wait()
        subprocess.run(["ip", "link", "del", OUTSIDE_LINK], check=False, capture_output=True)


def get_from_outside(enter: list[str], url: str) -> str | None:
    """The body of GET ``url`` from the outside client, or None when refused."""
    code = (
        "import sys, urllib.request\n"
        "try:\n"
        "    print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode(), end='')\n"
        "except OSError as exc:\n"
        "    sys.exit(f'{exc}')\n"
    )
    result = subprocess.run(
        [*enter, sys.executable, "-c", code, url],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    return result.stdout if result.returncode == 0 else None


def get_from_host(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


@pytest.mark.network_exposure
def test_default_deny_keeps_probes_and_nodeport_to_the_pods_it_allows(
    kubectl, netpol_ns, probe_image, outside_client
):
    serve = {
        "ports": [{"containerPort": 8080, "name": "http"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 2},
        "livenessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 2},
    }
    web, hidden = (
        probe_pod(name, probe_image, ["serve", ":8080"], restartPolicy="Always", container=serve)
        for name in ("web", "hidden")
    )
    services = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "type": "NodePort",
                "selector": {"app": name},
                "ports": [{"port": 80, "targetPort": 8080}],
            },
        }
        for name in ("web", "hidden")
    ]
    for pod in (web, hidden):
        pod["metadata"]["namespace"] = NAMESPACE
    kubectl.apply(
        policy("default-deny-ingress", {}, None),
        policy("web-from-anywhere", {"app": "web"}, [{"ports": [{"port": 8080}]}]),
        web,
        hidden,
        *services,
    )
    kubectl(
        "wait", "-n", NAMESPACE, "pod/web", "pod/hidden", "--for=condition=Ready", "--timeout=120s"
    )
    node_ip = kubectl(
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[0].status.addresses[?(@.type=='InternalIP')].address}",
    )
    port = {
        name: kubectl(
            "get", "service", "-n", NAMESPACE, name, "-o", "jsonpath={.spec.ports[0].nodePort}"
        )
        for name in ("web", "hidden")
    }
    web_url, hidden_url = (f"http://{node_ip}:{port[n]}/" for n in ("web", "hidden"))
    hidden_ip = pod_ip(kubectl, "hidden")

    # Pods behind the default deny are refused to other pods...
    eventually(
        lambda: not reaches(kubectl, "client", f"http://{hidden_ip}:8080/"),
        timeout=30,
        interval=0.5,
    )
    # ...and from outside the node, while the allowed pod answers there through its NodePort.
    assert eventually(
        lambda: get_from_outside(outside_client, web_url), timeout=30, interval=0.5
    ).startswith("probe web")
    assert get_from_outside(outside_client, hidden_url) is None
    # The kubelet's probes come from the node itself: both pods stay Ready and alive.
    time.sleep(8)
    for name in ("web", "hidden"):
        status = kubectl.json("get", "pod", "-n", NAMESPACE, name)["status"]
        ready = {c["type"]: c["status"] for c in status["conditions"]}["Ready"]
        restarts = status["containerStatuses"][0]["restartCount"]
        print(f"pod {name}: Ready={ready}, restarts={restarts} under the default deny")
        assert ready == "True"
        assert restarts == 0
    # NodePorts of the allowed pod still answer on the host's own addresses.
    for address in (node_ip, "127.0.0.1"):
        assert get_from_host(f"http://{address}:{port['web']}/").startswith("probe web")


def engine_cgroup_usage() -> tuple[float, int]:
    """CPU seconds used so far and resident anonymous memory (bytes) of the engine's container,
    read from its cgroup on this host (cgroup v1, as the local cluster's kubelet uses it)."""
    pids = subprocess.run(
        ["pgrep", "-f", "^/usr/local/bin/kube-router "], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(pids) == 1, pids
    paths = {}
    for line in Path(f"/proc/{pids[0]}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            paths[controller] = path
    mounts = {}
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mountpoint, fstype, options, *_ = line.split()
        if fstype == "cgroup":
            for option in options.split(","):
                mounts[option] = mountpoint
    usage = Path(f"{mounts['cpuacct']}{paths['cpuacct']}/cpuacct.usage")
    stat = Path(f"{mounts['memory']}{paths['memory']}/memory.stat").read_text()
    cpu = int(usage.read_text()) / 1e9
    rss = int(re.search(r"^total_rss (\d+)$", stat, re.M).group(1))
    return cpu, rss


def test_engine_at_rest_uses_little_cpu_and_memory(kubectl, netpol_ns, engine):
    window = 20
    cpu_before, _ = engine_cgroup_usage()
    time.sleep(window)
    cpu_after, rss = engine_cgroup_usage()
    millicores = (cpu_after - cpu_before) / window * 1000
    pods = len(kubectl("get", "pods", "-A", "-o", "name").split())
    policies = len(kubectl("get", "networkpolicies", "-A", "-o", "name").split())
    print(
        f"engine at rest over {window}s ({pods} pods, {policies} policies): "
        f"{millicores:.1f}m CPU, {rss / 2**20:.1f} MiB resident"
    )
    assert millicores < 50
    assert rss < 192 * 2**20


def test_engine_rebuilds_its_rules_after_its_pod_is_deleted(kubectl, netpol_ns, engine):
    url = f"http://{pod_ip(kubectl, 'server')}:8080/"
    kubectl.apply(admit_clients({"role": "client"}))
    eventually(
        lambda: reaches(kubectl, "client", url) and not reaches(kubectl, "stranger", url),
        timeout=30,
    )
    old = engine_pod(kubectl)
    start = time.monotonic()
    kubectl("delete", "pod", "-n", ENGINE[0], old, "--wait=true")
    new = eventually(lambda: (name := engine_pod(kubectl)) != old and name, timeout=120, interval=1)
    print(f"engine pod {old} deleted; {new} Ready after {time.monotonic() - start:.1f}s")
    assert reaches(kubectl, "client", url)
    assert not reaches(kubectl, "stranger", url)
    # The new instance follows changes: one made after the restart is enforced.
    kubectl.apply(admit_clients({"role": "nobody"}))
    took = seconds_until(lambda: not reaches(kubectl, "client", url))
    print(f"first policy change after the restart enforced in {took:.2f}s")
    logs = kubectl("logs", "-n", ENGINE[0], new)
    assert "Starting network policy controller" in logs
    status = kubectl.json("get", "pod", "-n", ENGINE[0], new)["status"]
    assert status["containerStatuses"][0]["restartCount"] == 0
