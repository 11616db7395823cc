"""The network_policy role's manifests, rendered without a cluster: what the engine may do."""

import subprocess

import pytest
import yaml
from ansible_support import BIN, ansible_env, make_password_file, run

PLAYBOOK = "tests/ansible/render-network-policy.yml"


def render(tmp_path, *overrides: str, check: bool = True):
    env = ansible_env(make_password_file(tmp_path))
    args = [str(BIN / "ansible-playbook"), PLAYBOOK, "-e", f"network_policy_render_dir={tmp_path}"]
    for override in overrides:
        args += ["-e", override]
    return run(args, env, check=check)


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("network-policy")
    render(out)
    path = out / "network-policy.yaml"
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "-k", "1.34.0", "--strict", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return {doc["kind"]: doc for doc in docs}


def test_renders_serviceaccount_rbac_and_daemonset(manifests):
    assert sorted(manifests) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
        "ServiceAccount",
    ]
    binding = manifests["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == manifests["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kube-router", "namespace": "kube-system"}
    ]
    pod = manifests["DaemonSet"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == manifests["ServiceAccount"]["metadata"]["name"]


def test_rbac_only_reads_pods_namespaces_policies_and_nodes(manifests):
    grants = {
        (group, resource): sorted(rule["verbs"])
        for rule in manifests["ClusterRole"]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert grants == {
        ("", "pods"): ["list", "watch"],
        ("", "namespaces"): ["list", "watch"],
        ("networking.k8s.io", "networkpolicies"): ["list", "watch"],
        ("", "nodes"): ["get"],
    }


def test_engine_runs_firewall_only_with_two_capabilities_and_no_privilege(manifests):
    pod = manifests["DaemonSet"]["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    (container,) = pod["containers"]
    assert {"--run-firewall=true", "--run-router=false", "--run-service-proxy=false"} <= set(
        container["args"]
    )
    security = container["securityContext"]
    assert security["privileged"] is False
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN", "NET_RAW"]}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert all(
        "hostPath" not in v or v["hostPath"]["path"] == "/run/xtables.lock" for v in pod["volumes"]
    )
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"


def test_command_line_overrides_are_typed_by_the_argument_specs(tmp_path):
    render(tmp_path, "network_policy_health_port=20300", "network_policy_iptables_mode=legacy")
    docs = [d for d in yaml.safe_load_all((tmp_path / "network-policy.yaml").read_text()) if d]
    (daemonset,) = [d for d in docs if d["kind"] == "DaemonSet"]
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    assert "--health-port=20300" in container["args"]
    assert container["livenessProbe"]["httpGet"]["port"] == 20300
    assert {"name": "IPTABLES_MODE", "value": "legacy"} in container["env"]


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("network_policy_health_port=80", "network_policy_health_port"),
        ("network_policy_iptables_mode=iptables", "network_policy_iptables_mode"),
        ("network_policy_service_cidr=everything", "network_policy_service_cidr"),
    ],
)
def test_an_invalid_value_stops_the_run_naming_the_variable(tmp_path, override, named):
    result = render(tmp_path, override, check=False)
    assert result.returncode != 0
    assert named in result.stdout + result.stderr
    assert not (tmp_path / "network-policy.yaml").exists()
