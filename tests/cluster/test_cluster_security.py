"""Only the cluster's admin reaches its state: etcd, the API server, the kubelet, the keys.

Each probe runs as the unprivileged local user ``nobody`` (what any account on the host can do)
and has a control: the same request with the right credentials succeeds, so a refusal is the
cluster's doing and not a broken probe.
"""

from __future__ import annotations

import base64
import json
import re
import stat
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import KUBECONFIG, Kubectl, as_nobody, probe_pod
from test_local_cluster import run_to_completion

CLUSTER_DIR = Path(KUBECONFIG).parent
PKI = CLUSTER_DIR / "pki"
ETCD = "https://127.0.0.1:2379"
ETCD_METRICS = "http://127.0.0.1:2381"
KUBELET = "https://127.0.0.1:10250"
SECRET = "etcd-probe"
PASSWORD = "etcd-probe-clear-text-7f3a"
MIN_NOFILE = 16384


def curl(*args: str, nobody: bool = False) -> subprocess.CompletedProcess[str]:
    """curl with a 10 s limit, as root or as nobody; prints the status code last."""
    cmd = ["curl", "-sS", "-m", "10", "-w", "\n%{http_code}", *args]
    result = as_nobody(*cmd) if nobody else subprocess.run(cmd, capture_output=True, text=True)
    who = "as nobody" if nobody else "as root"
    print(f"{who}: curl {' '.join(args)} -> exit {result.returncode}")
    return result


def status(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout.rsplit("\n", 1)[-1]


def body(result: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(result.stdout.rsplit("\n", 1)[0])


def api_server() -> str:
    server = re.search(r"server: (\S+)", Path(KUBECONFIG).read_text()).group(1)
    return f"https://127.0.0.1:{urlparse(server).port}"


def etcd_range(key: str, *auth: str, nobody: bool = False) -> subprocess.CompletedProcess[str]:
    body = json.dumps({"key": base64.b64encode(key.encode()).decode()})
    return curl("-X", "POST", "-d", body, f"{ETCD}/v3/kv/range", *auth, nobody=nobody)


ETCD_CLIENT = (
    "--cacert",
    str(PKI / "etcd-ca.crt"),
    "--cert",
    str(PKI / "apiserver-etcd-client.crt"),
    "--key",
    str(PKI / "apiserver-etcd-client.key"),
)


def stored_value(key: str) -> bytes:
    """The value etcd holds at ``key``, read with the API server's client certificate."""
    result = etcd_range(key, *ETCD_CLIENT)
    assert result.returncode == 0, result.stderr
    assert status(result) == "200", result.stdout
    kvs = body(result).get("kvs", [])
    assert len(kvs) == 1, f"etcd holds no {key}"
    return base64.b64decode(kvs[0]["value"])


@pytest.fixture(scope="module")
def secret(kubectl: Kubectl, namespace: str) -> str:
    """A Secret and a ConfigMap holding the same text: the ConfigMap is stored in clear."""
    for kind in ("secret", "configmap"):
        kubectl.run("delete", kind, "-n", namespace, SECRET, "--ignore-not-found")
    literal = f"--from-literal=password={PASSWORD}"
    kubectl("create", "secret", "generic", "-n", namespace, SECRET, literal)
    kubectl("create", "configmap", "-n", namespace, SECRET, literal)
    return f"/registry/secrets/{namespace}/{SECRET}"


def test_etcd_refuses_a_client_without_a_certificate(secret: str) -> None:
    plain = curl("-X", "POST", "-d", "{}", "http://127.0.0.1:2379/v3/kv/range", nobody=True)
    assert plain.returncode != 0, plain.stdout
    # Over TLS without a client certificate (nobody cannot read the CA: its directory is
    # root's, mode 0700; -k skips the check of the server's certificate).
    no_cert = etcd_range(secret, "-k", nobody=True)
    print(f"  {no_cert.stderr.strip()}")
    assert no_cert.returncode != 0
    assert PASSWORD not in no_cert.stdout
    # A certificate of the cluster's CA (the admin's) is no etcd client either.
    admin = etcd_range(
        secret, "-k", "--cert", str(PKI / "admin.crt"), "--key", str(PKI / "admin.key")
    )
    print(f"  {admin.stderr.strip()}")
    assert admin.returncode != 0
    # Control: the API server's client certificate reads the key.
    assert stored_value(secret)


def test_secrets_are_encrypted_at_rest(kubectl: Kubectl, namespace: str, secret: str) -> None:
    value = stored_value(secret)
    print(f"etcd {secret}: {value[:32]!r}...")
    assert value.startswith(b"k8s:enc:secretbox:v1:")
    assert PASSWORD.encode() not in value
    # Controls: the API returns the password, and the probe sees clear text where there is some.
    data = kubectl("get", "secret", "-n", namespace, SECRET, "-o", "jsonpath={.data.password}")
    assert base64.b64decode(data).decode() == PASSWORD
    assert PASSWORD.encode() in stored_value(f"/registry/configmaps/{namespace}/{SECRET}")


def test_every_secret_in_etcd_is_encrypted() -> None:
    every_secret = json.dumps(
        {
            "key": base64.b64encode(b"/registry/secrets/").decode(),
            "range_end": base64.b64encode(b"/registry/secrets0").decode(),
        }
    )
    result = curl("-X", "POST", "-d", every_secret, f"{ETCD}/v3/kv/range", *ETCD_CLIENT)
    kvs = body(result).get("kvs", [])
    clear = [
        base64.b64decode(kv["key"]).decode()
        for kv in kvs
        if not base64.b64decode(kv["value"]).startswith(b"k8s:enc:")
    ]
    print(f"{len(kvs)} Secrets in etcd, {len(clear)} in clear")
    assert kvs
    assert clear == []


def test_etcd_health_answers_on_loopback_only(kubectl: Kubectl) -> None:
    health = curl(f"{ETCD_METRICS}/health", nobody=True)
    assert status(health) == "200"
    assert '"health":"true"' in health.stdout
    node_ip = kubectl(
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[0].status.addresses[?(@.type=='InternalIP')].address}",
    )
    if node_ip.startswith("127."):
        pytest.skip(f"the node's address {node_ip} is a loopback address")
    for port in (2379, 2380, 2381):
        outside = curl(f"http://{node_ip}:{port}/health", nobody=True)
        print(f"  {outside.stderr.strip()}")
        assert outside.returncode == 7, f"{node_ip}:{port} answers: {outside.stdout}"


@pytest.mark.parametrize("path", ["/api", "/version", "/api/v1/namespaces/kube-system/secrets"])
def test_the_api_server_refuses_anonymous_requests(path: str) -> None:
    anonymous = curl("-k", api_server() + path, nobody=True)
    assert status(anonymous) == "401", anonymous.stdout
    admin = curl(
        "--cacert",
        str(PKI / "ca.crt"),
        "--cert",
        str(PKI / "admin.crt"),
        "--key",
        str(PKI / "admin.key"),
        api_server() + path,
    )
    assert status(admin) == "200", admin.stdout


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/healthz"])
def test_the_api_server_answers_anonymous_health_checks(path: str) -> None:
    anonymous = curl("-k", api_server() + path, nobody=True)
    assert status(anonymous) == "200", anonymous.stdout
    assert anonymous.stdout.startswith("ok")
    # Control: a check below it is no health endpoint of the list.
    below = curl("-k", api_server() + path + "/ping", nobody=True)
    assert status(below) == "401"


def test_the_kubelet_refuses_anonymous_requests() -> None:
    anonymous = curl("-k", f"{KUBELET}/pods", nobody=True)
    assert status(anonymous) == "401", anonymous.stdout
    client = curl(
        "-k",
        "--cert",
        str(PKI / "apiserver-kubelet-client.crt"),
        "--key",
        str(PKI / "apiserver-kubelet-client.key"),
        f"{KUBELET}/pods",
    )
    assert status(client) == "200"
    assert body(client)["kind"] == "PodList"


def owner_mode(path: Path) -> str:
    info = path.stat()
    return f"{info.st_uid}:{info.st_gid} {stat.S_IMODE(info.st_mode):04o}"


def test_private_keys_are_root_0600_in_root_0700_directories() -> None:
    keys = sorted(PKI.glob("*.key"))
    secrets = [*keys, CLUSTER_DIR / "config" / "encryption-config.yaml"]
    print(", ".join(f"{p.name} {owner_mode(p)}" for p in secrets))
    assert {"ca.key", "etcd-ca.key", "apiserver-etcd-client.key", "encryption.key"} <= {
        p.name for p in keys
    }
    for path in secrets:
        assert owner_mode(path) == "0:0 0600", path
    for directory in (CLUSTER_DIR, PKI, CLUSTER_DIR / "config", CLUSTER_DIR / "kubeconfig"):
        assert owner_mode(directory) == "0:0 0700", directory
    refused = as_nobody("cat", str(PKI / "encryption.key"))
    print(f"cat encryption.key as nobody: {refused.stderr.strip()}")
    assert refused.returncode != 0
    assert "Permission denied" in refused.stderr
    # Control: root reads it, a 32-byte key.
    assert len(base64.b64decode((PKI / "encryption.key").read_text())) == 32


PATH_IN_FILE = re.compile(r"(/[\w./-]+\.(?:crt|key|pub|kubeconfig|yaml|toml))")


def test_every_component_restarts_on_a_change_of_any_file_it_reads() -> None:
    """run/NAME.deps lists each file the command line and its configuration files name."""
    run = CLUSTER_DIR / "run"
    components = sorted(p.stem for p in run.glob("*.cmd"))
    assert "kube-apiserver" in components
    assert "etcd" in components
    for name in components:
        deps = set((run / f"{name}.deps").read_text().split())
        named = {
            arg.split("=", 1)[1]
            for arg in (run / f"{name}.cmd").read_text().split()
            if "=" in arg and Path(arg.split("=", 1)[1]).is_file()
        }
        for dep in list(named | deps):
            if dep.endswith((".kubeconfig", ".yaml", ".toml")):
                named |= set(PATH_IN_FILE.findall(Path(dep).read_text()))
        named = {path for path in named if path.startswith(f"{CLUSTER_DIR}/")}
        print(f"{name}: {len(deps)} files, {sorted(Path(p).name for p in deps)}")
        assert named - deps == set(), f"{name} reads files missing from its .deps"


def test_pods_get_an_open_file_limit_of_at_least_16384(
    kubectl: Kubectl, namespace: str, probe_image: str
) -> None:
    log = run_to_completion(
        kubectl, probe_pod("open-files", probe_image, ["cat", "/proc/self/limits"])
    )
    soft, hard = re.search(r"^Max open files\s+(\d+)\s+(\d+)", log, re.M).groups()
    print(f"pod open-file limit: soft {soft}, hard {hard}")
    assert int(hard) >= MIN_NOFILE
    assert int(soft) >= MIN_NOFILE
    # Control: the pod inherits containerd's limit.
    pid = (CLUSTER_DIR / "run" / "containerd.child").read_text().strip()
    containerd = re.search(
        r"^Max open files\s+(\d+)\s+(\d+)", Path(f"/proc/{pid}/limits").read_text(), re.M
    ).groups()
    print(f"containerd open-file limit: soft {containerd[0]}, hard {containerd[1]}")
    assert containerd[1] == hard
