"""The local_cluster role's probe (module local_cluster_probe) and its verdict (filter
local_cluster_verdict): the binaries of build.sh --status, the fingerprint of the role's files,
the health checks and the certificates close to their end, and what a run decides and says
from them.

The probe runs for real against stand-ins written here: a build script, a service script and a
kubectl that answer as the real ones do, and certificates made with openssl.
"""

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.filter import local_cluster as verdicts
from ansible_collections.flask_k8s.stack.plugins.module_utils import local_cluster as shared
from ansible_collections.flask_k8s.stack.plugins.modules import local_cluster_probe as probes
from ansible_support import ROLES_DIR

CACHE = "/cache/bin"


def status_line(name: str, build: str, state: str = "cached") -> str:
    return f"{name} {CACHE}/{name}-{build}/{name} {state}"


def test_status_lines_give_path_build_and_version():
    text = "\n".join(
        [
            status_line("kubectl", "v1.33.1-0123456789ab"),
            status_line("pause", "3.10-abcdef012345", "missing"),
            status_line("busybox", "1.36.1"),
        ]
    )
    facts = probes.binary_facts(probes.parse_status(text), ["pause"], "docker.io/flask-k8s")
    assert facts == {
        "bin": {
            "kubectl": f"{CACHE}/kubectl-v1.33.1-0123456789ab/kubectl",
            "pause": f"{CACHE}/pause-3.10-abcdef012345/pause",
            "busybox": f"{CACHE}/busybox-1.36.1/busybox",
        },
        "builds": {
            "kubectl": "v1.33.1-0123456789ab",
            "pause": "3.10-abcdef012345",
            "busybox": "1.36.1",
        },
        "versions": {"kubectl": "v1.33.1", "pause": "3.10", "busybox": "1.36.1"},
        "missing": ["pause"],
        "image_refs": {"pause": "docker.io/flask-k8s/pause:3.10-abcdef012345"},
    }


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "build.sh: downloading modules\n",
        "kubectl /cache/bin/kubectl-v1/kubectl stale\n",
        "kubectl /cache/bin/kubectl-v1/kubectl\n",
        "kubectl /cache/bin/kubectl-v1/kubectl cached extra\n",
    ],
    ids=["empty", "blank", "other output", "unknown state", "two fields", "four fields"],
)
def test_lines_other_than_status_lines_are_skipped(text: str):
    assert probes.parse_status(text) == []


def test_a_directory_not_named_after_the_binary_is_the_build():
    (binary,) = probes.parse_status("etcd /cache/bin/v3.5.21-0123456789ab/etcd cached\n")
    assert (binary["build"], binary["version"]) == ("v3.5.21-0123456789ab", "v3.5.21")
    (binary,) = probes.parse_status("etcd /cache/bin/etcd-v3.5.21-XYZ/etcd cached\n")
    assert (binary["build"], binary["version"]) == ("v3.5.21-XYZ", "v3.5.21-XYZ")


def shell_files_hash(paths: list[Path]) -> str:
    """The fingerprint as the role's shell probe made it."""
    quoted = " ".join(f"'{path}'" for path in paths)
    script = (
        f"find {quoted} -type f -print0 2>/dev/null | sort -z | xargs -0 sha256sum"
        " | sha256sum | cut -c1-64"
    )
    env = {**os.environ, "LC_ALL": "C"}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env)
    return done.stdout.strip()


def test_the_fingerprint_of_files_is_that_of_sha256sum_over_find(tmp_path: Path):
    role = tmp_path / "role"
    for name, text in {
        "tasks/main.yml": "---\n",
        "tasks/a-b.yml": "a",
        "tasks/a.yml": "b",
        "tasks/A.yml": "c",
        "files/.hidden": "d",
        "files/deep/er/file.sh": "e",
        "empty": "",
    }.items():
        (role / name).parent.mkdir(parents=True, exist_ok=True)
        (role / name).write_text(text)
    (role / "files" / "empty-dir").mkdir()
    (role / "files" / "link").symlink_to(role / "tasks" / "main.yml")
    (role / "files" / "dir-link").symlink_to(role / "tasks")
    script = tmp_path / "build.sh"
    script.write_text("#!/bin/sh\n")
    linked = tmp_path / "linked.sh"
    linked.symlink_to(script)
    paths = [role, script, linked, tmp_path / "missing", script]
    assert probes.files_hash([str(p) for p in paths]) == shell_files_hash(paths)
    before = probes.files_hash([str(role)])
    (role / "tasks" / "a.yml").write_text("changed")
    assert probes.files_hash([str(role)]) != before
    (role / "tasks" / "a.yml").write_text("b")
    assert probes.files_hash([str(role)]) == before
    (role / "tasks" / "a.yml").rename(role / "tasks" / "b.yml")
    assert probes.files_hash([str(role)]) != before


def test_values_are_read_without_trailing_newlines(tmp_path: Path):
    (tmp_path / "stamp").write_text("abc\n\n")
    (tmp_path / "empty").write_text("")
    assert probes.read_value(str(tmp_path / "stamp")) == "abc"
    assert probes.read_value(str(tmp_path / "empty")) == ""
    assert probes.read_value(str(tmp_path / "missing")) == ""
    assert probes.read_value(str(tmp_path)) == ""


def test_commands_give_their_status_and_outputs_and_127_when_they_cannot_start(tmp_path: Path):
    script = 'echo "$PROBE_VALUE"; echo oops >&2; exit 3'
    assert shared.run(["sh", "-c", script], {"PROBE_VALUE": "x"}) == (3, "x\n", "oops\n")
    rc, out, errors = shared.run([str(tmp_path / "missing")], {})
    assert (rc, out) == (127, "")
    assert "No such file" in errors
    (tmp_path / "plain").write_text("not executable")
    rc, out, errors = shared.run([str(tmp_path / "plain")], {})
    assert (rc, out) == (127, "")
    assert "Permission denied" in errors


@pytest.mark.parametrize(
    ("output", "ok"),
    [("1", True), ("3\n", True), ("0", False), ("", False), ("x", False), ("-1", False)],
)
def test_a_deployment_is_available_with_one_available_replica(output: str, ok: bool):
    assert probes.available(output) is ok


def make_certificate(pki: Path, name: str, days: int) -> None:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-days", str(days), "-keyout", str(pki / f"{name}.key"),
            "-out", str(pki / f"{name}.crt"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca and kubelet valid a year, apiserver 10 days, broken.crt no certificate, a directory
    and a hidden file named *.crt."""
    pki = tmp_path_factory.mktemp("pki")
    make_certificate(pki, "ca", 365)
    make_certificate(pki, "kubelet", 365)
    make_certificate(pki, "apiserver", 10)
    (pki / "broken.crt").write_text("not a certificate\n")
    (pki / "directory.crt").mkdir()
    (pki / ".hidden.crt").write_text("not a certificate\n")
    return pki


def test_certificates_that_end_within_the_days_or_cannot_be_read_are_expiring(pki: Path):
    assert shared.expiring_certificates(str(pki), 30 * 86400, shared.run) == [
        str(pki / "apiserver.crt"),
        str(pki / "broken.crt"),
    ]
    assert shared.expiring_certificates(str(pki), 5 * 86400, shared.run) == [
        str(pki / "broken.crt")
    ]
    assert shared.expiring_certificates(str(pki / "missing"), 86400, shared.run) == []


def executable(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


SERVICES = ["containerd", "etcd", "kubelet"]
BINARIES = ["kubectl", "etcd", "pause"]


@pytest.fixture
def host(tmp_path: Path, pki: Path) -> dict[str, Any]:
    """The module's parameters on a healthy stand-in of the host: every service runs (unless
    named in a file `down`), the node is Ready and the Deployments available (unless named in
    a file `unready`)."""
    cache = tmp_path / "cache"
    kubectl = cache / "bin" / "kubectl-v1.33.1-0123456789ab" / "kubectl"
    kubectl.parent.mkdir(parents=True)
    executable(
        kubectl,
        "#!/bin/bash\n"
        f'grep -qx -- "${{@: -3:1}}" {tmp_path}/unready 2>/dev/null && exit 1\n'
        'case "$*" in *" node "*) printf True ;; *) printf 2 ;; esac\n',
    )
    lines = [
        f"kubectl {kubectl} cached",
        f"etcd {cache}/bin/etcd-v3.5.21-abcdef012345/etcd cached",
        f"pause {cache}/bin/pause-3.10-abcdef012345/pause missing",
    ]
    build = executable(
        tmp_path / "build.sh",
        '#!/bin/bash\n[[ "$*" == "--status all" && -n $FLASK_K8S_CACHE ]] || exit 2\n'
        + "".join(f"echo '{line}'\n" for line in lines)
        + f"echo 'build.sh: {len(lines)} binaries' >&2\n",
    )
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    service = executable(
        tmp_path / "cluster-service.sh",
        f"#!/bin/bash\n[[ $1 == status && $FLASK_K8S_CLUSTER_DIR == {cluster} ]] || exit 2\n"
        f'if grep -qx -- "$2" {tmp_path}/down 2>/dev/null; then echo stopped; exit 3; fi\n'
        "echo running\n",
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    role = tmp_path / "role"
    role.mkdir()
    (role / "main.yml").write_text("---\n")
    return {
        "build_script": build,
        "cache_dir": str(cache),
        "binaries": BINARIES,
        "images": ["pause"],
        "image_repository": "docker.io/flask-k8s",
        "fingerprint_paths": [str(role)],
        "cluster_dir": str(cluster),
        "containerd_run_dir": str(run_dir),
        "pki_dir": str(pki),
        "cert_renew_days": 5,
        "service_script": service,
        "services": SERVICES,
        "ready_checks": {"etcd": "true", "kubelet": "echo ready | grep -q ready"},
        "kubeconfig": str(tmp_path / "admin.kubeconfig"),
        "node_name": "node-1",
        "deployments": ["coredns", "metrics-server"],
    }


def test_a_healthy_host_has_every_binary_and_no_problem(host: dict[str, Any], pki: Path):
    host["pki_dir"] = str(pki / "missing")
    cluster = Path(host["cluster_dir"])
    (cluster / "converged").write_text("f" * 64)
    (cluster / "boot-id").write_text(probes.read_value(probes.BOOT_ID))
    result = probes.probe(host, shared.run)
    assert result["missing"] == ["pause"]
    assert result["versions"] == {"kubectl": "v1.33.1", "etcd": "v3.5.21", "pause": "3.10"}
    assert result["image_refs"] == {"pause": "docker.io/flask-k8s/pause:3.10-abcdef012345"}
    assert result["files_hash"] == probes.files_hash(host["fingerprint_paths"])
    assert result["stamp"] == "f" * 64
    assert result["boot_id"] == result["boot_id_now"] != ""
    assert {key: result[key] for key in ("lost", "expiring", "down", "unready")} == {
        "lost": "",
        "expiring": [],
        "down": [],
        "unready": [],
    }
    assert (result["healthy"], result["stopped"]) == (True, False)


def test_a_host_never_converged_has_no_stamp_and_no_boot_id(host: dict[str, Any]):
    result = probes.probe(host, shared.run)
    assert (result["stamp"], result["boot_id"]) == ("", "")
    assert result["expiring"] == ["broken"]
    assert result["healthy"] is False


def test_components_down_or_unready_are_named_in_order(host: dict[str, Any], tmp_path: Path):
    (tmp_path / "down").write_text("kubelet\netcd\n")
    (tmp_path / "unready").write_text("node-1\nmetrics-server\n")
    host["ready_checks"] = {"containerd": "exit 1", "etcd": "true", "kubelet": "sleep 10"}
    result = probes.probe(host, shared.run)
    assert result["down"] == ["etcd", "kubelet"]
    assert result["unready"] == ["containerd", "kubelet", "node", "metrics-server"]
    assert (result["healthy"], result["stopped"]) == (False, False)


def test_a_host_that_restarted_has_every_component_down(host: dict[str, Any], tmp_path: Path):
    Path(host["containerd_run_dir"]).rmdir()
    host["service_script"] = str(tmp_path / "missing-script")
    host["ready_checks"] = {"etcd": "false"}
    result = probes.probe(host, shared.run)
    assert result["down"] == SERVICES
    assert result["lost"] == host["containerd_run_dir"]
    assert (result["healthy"], result["stopped"]) == (False, True)


def test_without_kubectl_the_node_and_deployments_are_unready(host: dict[str, Any]):
    host["build_script"] = executable(
        Path(host["build_script"]),
        "#!/bin/sh\n"
        "echo 'kubectl /nonexistent/kubectl-v1.33.1-0123456789ab/kubectl missing'\n"
        "echo 'etcd /nonexistent/etcd-v3.5.21-0123456789ab/etcd missing'\n"
        "echo 'pause /nonexistent/pause-3.10-0123456789ab/pause missing'\n",
    )
    result = probes.probe(host, shared.run)
    assert result["missing"] == BINARIES
    assert result["unready"] == ["node", "coredns", "metrics-server"]


def test_a_build_script_that_fails_or_leaves_out_a_binary_fails(host: dict[str, Any]):
    script = Path(host["build_script"])
    executable(script, "#!/bin/sh\necho 'kubectl /c/kubectl-v1/kubectl cached'\nexit 1\n")
    with pytest.raises(ValueError, match=r"--status all failed \(exit status 1\)$"):
        probes.probe(host, shared.run)
    executable(script, "#!/bin/sh\necho one >&2\necho 'build.sh: unknown component' >&2\nexit 2\n")
    with pytest.raises(ValueError, match=r"\(exit status 2\): one / build.sh: unknown component$"):
        probes.probe(host, shared.run)
    executable(script, "#!/bin/sh\necho 'kubectl /c/kubectl-v1/kubectl cached'\n")
    with pytest.raises(ValueError, match=r"did not report: \['etcd', 'pause'\]$"):
        probes.probe(host, shared.run)
    host["binaries"] = ["kubectl"]
    with pytest.raises(ValueError, match=r"did not report: \['pause'\]$"):
        probes.probe(host, shared.run)
    host["build_script"] = str(script.parent / "missing.sh")
    with pytest.raises(ValueError, match=r"failed \(exit status 127\)"):
        probes.probe(host, shared.run)


FINGERPRINT = "a" * 64
HEALTHY = {
    "stamp": FINGERPRINT,
    "boot_id": "boot-1",
    "boot_id_now": "boot-1",
    "lost": "",
    "missing": [],
    "expiring": [],
    "down": [],
    "unready": [],
    "healthy": True,
    "stopped": False,
}
STOPPED = {
    **HEALTHY,
    "down": SERVICES,
    "unready": ["etcd", "node"],
    "healthy": False,
    "stopped": True,
}
RESTART = "Restarting the local cluster, converged here before, of which no component runs: "
RESTART_END = ". Its state, images and volumes are on disk; every component and pod starts again."
CONVERGE = "Converging the local cluster step by step: "


@pytest.mark.parametrize(
    ("probe", "reconcile", "current", "reason", "message"),
    [
        pytest.param(
            {},
            False,
            True,
            "",
            "Local cluster is current (inputs unchanged since it was converged, every component"
            " healthy): nothing to check.",
            id="current",
        ),
        pytest.param({}, "true", False, "", CONVERGE + "reconcile requested.", id="reconcile"),
        pytest.param(
            {"stamp": "b" * 64},
            False,
            False,
            "",
            CONVERGE + "inputs changed since the last converge.",
            id="inputs changed",
        ),
        pytest.param(
            {"stamp": "", "missing": ["kubectl", "etcd"]},
            True,
            False,
            "",
            CONVERGE + "binaries to build: kubectl, etcd.",
            id="never converged, binaries missing",
        ),
        pytest.param(
            {"expiring": ["apiserver", "ca"], "healthy": False, "down": ["etcd"]},
            False,
            False,
            "",
            CONVERGE + "certificates to renew: expiring=apiserver, expiring=ca.",
            id="certificates expiring",
        ),
        pytest.param(
            {"down": ["etcd"], "unready": ["etcd", "node"], "healthy": False},
            False,
            False,
            "",
            CONVERGE + "not healthy: down=etcd, unready=etcd, unready=node.",
            id="partly down",
        ),
        pytest.param(
            {**STOPPED, "stamp": ""},
            False,
            False,
            "",
            CONVERGE
            + "not healthy: down=containerd, down=etcd, down=kubelet, unready=etcd, unready=node.",
            id="never converged, nothing runs",
        ),
        pytest.param(
            {**STOPPED, "boot_id_now": "boot-2", "lost": "/run/flask-k8s/containerd"},
            False,
            False,
            RESTART + "the host has restarted since (its boot id changed)" + RESTART_END,
            None,
            id="boot id changed",
        ),
        pytest.param(
            {**STOPPED, "lost": "/run/flask-k8s/containerd", "missing": ["etcd"]},
            True,
            False,
            RESTART + "its runtime directory /run/flask-k8s/containerd is gone too, as after a"
            " restart of the host (the boot id is unchanged: its processes were killed and /run"
            " emptied)" + RESTART_END,
            None,
            id="runtime directory lost",
        ),
        pytest.param(
            {**STOPPED, "boot_id": ""},
            False,
            False,
            RESTART + "its processes were stopped or killed" + RESTART_END,
            None,
            id="killed, no boot id stored",
        ),
    ],
)
def test_the_verdict_says_what_the_run_does_and_why(
    probe: dict, reconcile: object, current: bool, reason: str, message: str | None
):
    verdict = verdicts.local_cluster_verdict({**HEALTHY, **probe}, FINGERPRINT, reconcile)
    assert verdict == {
        "current": current,
        "restart_reason": reason,
        "message": reason if message is None else message,
    }


def test_a_verdict_of_a_result_that_is_not_the_probes_fails():
    with pytest.raises(AnsibleFilterError, match="expects the local_cluster_probe result"):
        verdicts.local_cluster_verdict(["stamp=x"], FINGERPRINT)  # type: ignore[arg-type]
    with pytest.raises(AnsibleFilterError, match=r"lacks \['healthy', 'stopped'\]"):
        verdicts.local_cluster_verdict(
            {k: v for k, v in HEALTHY.items() if k not in ("healthy", "stopped")}, FINGERPRINT
        )
    with pytest.raises(AnsibleFilterError, match="reconcile"):
        verdicts.local_cluster_verdict(HEALTHY, FINGERPRINT, "maybe")
    skipped = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
    with pytest.raises(AnsibleFilterError, match="lacks"):
        verdicts.local_cluster_verdict(skipped, FINGERPRINT)


KEPT = "volumes: kept 2 in /var/lib/flask-k8s/volumes for the next cluster: ns/a, ns/b"
HINT = " (local_cluster_delete_volumes=true deletes them)."


@pytest.mark.parametrize(
    ("lines", "delete", "changed", "removed", "volumes"),
    [
        pytest.param(
            ["nothing to remove", "volumes: none in /v"],
            False,
            False,
            False,
            "Local cluster volumes: none in /v",
            id="nothing there",
        ),
        pytest.param(
            ["nothing to remove", KEPT],
            "false",
            False,
            False,
            "Local cluster volumes: " + KEPT.removeprefix("volumes: ") + HINT,
            id="volumes kept",
        ),
        pytest.param(
            ["files /var/lib/flask-k8s/cluster", "process etcd", KEPT],
            False,
            True,
            True,
            "Local cluster volumes: " + KEPT.removeprefix("volumes: ") + HINT,
            id="cluster removed, volumes kept",
        ),
        pytest.param(
            ["nothing to remove", "volumes: deleted 1: ns/a (/v/ns/a)"],
            True,
            True,
            False,
            "Local cluster volumes: deleted 1: ns/a (/v/ns/a)",
            id="volumes deleted",
        ),
        pytest.param(
            ["nothing to remove", "volumes: none to delete in /v"],
            "yes",
            False,
            False,
            "Local cluster volumes: none to delete in /v",
            id="none to delete",
        ),
        pytest.param([], False, False, True, "", id="no output"),
    ],
)
def test_the_cleanup_report_says_what_was_removed_and_where_the_volumes_are(
    lines: list[str], delete: object, changed: bool, removed: bool, volumes: str
):
    assert verdicts.local_cluster_cleanup_report(lines, delete) == {
        "changed": changed,
        "removed": removed,
        "volumes": volumes,
    }


@pytest.mark.parametrize(
    ("lines", "delete"),
    [("nothing to remove", False), (None, False), ([1], False), (["x"], "maybe")],
    ids=["a string", "none", "not strings", "delete not a boolean"],
)
def test_a_cleanup_report_of_other_input_fails(lines: object, delete: object):
    with pytest.raises(AnsibleFilterError, match="local_cluster_cleanup_report"):
        verdicts.local_cluster_cleanup_report(lines, delete)  # type: ignore[arg-type]


OVERLAP = (
    "local_cluster_pod_cidr ({pods}) and local_cluster_service_cidr ({services}) must not overlap."
)
DNS = (
    "local_cluster_dns_ip must be an address inside local_cluster_service_cidr ({services})"
    " other than the API server's {api}, got '{dns}'."
)


@pytest.mark.parametrize(
    ("pods", "services", "dns", "problems"),
    [
        ("10.244.0.0/24", "10.96.0.0/24", "10.96.0.10", []),
        ("10.244.0.0/16", "10.96.0.0/12", "10.96.0.10", []),
        ("10.96.1.0/24", "10.96.0.0/16", "10.96.0.10", [OVERLAP]),
        ("10.0.0.0/8", "10.96.0.0/16", "10.96.0.10", [OVERLAP]),
        # A pod CIDR with host bits is its network.
        ("10.96.0.5/24", "10.96.0.0/24", "10.96.0.10", [OVERLAP]),
        ("10.244.0.0/24", "10.96.0.0/24", "10.97.0.10", [DNS]),
        ("10.244.0.0/24", "10.96.0.0/24", "10.96.0.1", [DNS]),
        ("10.244.0.0/24", "10.96.0.0/24", "dns", [DNS]),
        ("10.244.0.0/24", "10.96.0.0/24", "", [DNS]),
        ("10.244.0.0/24", "10.96.0.0/24", "fd00::10", [DNS]),
        ("10.96.0.0/24", "10.96.0.0/24", "10.96.0.1", [OVERLAP, DNS]),
        # A setting that is no IPv4 network is named by its own check, not related here.
        ("10.244.0.0", "10.96.0.0/24", "10.97.0.10", []),
        ("10.244.0.0/24", "everything", "x", []),
        ("fd00::/64", "10.96.0.0/24", "10.97.0.10", []),
        (None, "10.96.0.0/24", "10.97.0.10", []),
    ],
)
def test_network_problems_name_each_conflict_between_the_networks(
    pods: object, services: str, dns: str, problems: list[str]
):
    api = "10.96.0.1"
    found = verdicts.local_cluster_network_problems(pods, services, dns, api)
    assert found == [p.format(pods=pods, services=services, dns=dns, api=api) for p in problems]


def test_the_settings_are_those_of_the_defaults_less_those_of_a_run_in_their_order():
    text = """---
local_cluster_state: present
local_cluster_dir: /d
# a comment
local_cluster_reconcile: false
local_cluster_delete_volumes: false
local_cluster_log_verbosity: 1
"""
    assert verdicts.local_cluster_settings(text) == [
        "local_cluster_dir",
        "local_cluster_log_verbosity",
    ]


def test_the_settings_of_the_role_s_defaults_are_every_setting_but_those_of_a_run():
    defaults = ROLES_DIR / "local_cluster" / "defaults" / "main.yml"
    names = verdicts.local_cluster_settings(defaults.read_text())
    assert "local_cluster_pod_cidr" in names
    assert "local_cluster_apiserver_port" in names
    assert not set(names) & set(verdicts.RUN_SETTINGS)
    assert len(names) == len(yaml.safe_load(defaults.read_text())) - len(verdicts.RUN_SETTINGS)


@pytest.mark.parametrize(
    "defaults",
    [
        None,
        1,
        ["local_cluster_dir"],
        {"local_cluster_dir": "/d"},
        "",
        "- a\n- b\n",
        "just text",
        "1: one\n",
        "a: [b\n",
    ],
    ids=[
        "none",
        "a number",
        "a list",
        "a mapping",
        "empty",
        "a YAML list",
        "a YAML string",
        "a number key",
        "no YAML",
    ],
)
def test_settings_of_anything_but_the_text_of_a_yaml_mapping_fail(defaults: object):
    with pytest.raises(AnsibleFilterError, match="local_cluster_settings"):
        verdicts.local_cluster_settings(defaults)
