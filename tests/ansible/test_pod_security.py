"""Every pod the project creates meets the Pod Security Standards' restricted profile, which
the project's namespace enforces: the flaskapp, mongodb and backup roles' workloads and the
Jobs verify.yml starts, init containers included (rules in pod_security.py)."""

import copy

import pytest
from ansible_support import (
    BIN,
    COMBINATIONS,
    checked,
    load_documents,
    one,
    run,
    validate_strictly,
)
from pod_security import pod_specs_of, restricted_violations

NAMES = [combo["name"] for combo in COMBINATIONS]


@pytest.fixture(scope="module")
def verify_rendered(tmp_path_factory, vault):
    directory = tmp_path_factory.mktemp("verify")
    checked(
        run(
            [
                BIN / "ansible-playbook",
                "tests/ansible/render-verify.yml",
                "-e",
                f"render_verify_dir={directory}",
            ],
            vault.env(),
        )
    )
    return directory


@pytest.fixture(scope="module")
def verify_documents(verify_rendered):
    return load_documents(verify_rendered)


def test_the_pods_verify_starts_pass_strict_schema_validation(verify_rendered):
    result = validate_strictly([verify_rendered / "verify.yaml"])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", NAMES)
def test_every_pod_of_the_roles_meets_the_restricted_profile(name, manifests, rendered_root):
    documents = manifests[name] + load_documents(rendered_root / name / "backup")
    specs = pod_specs_of(documents)
    kinds = {where.split("/")[0] for where, _ in specs}
    assert {"Deployment", "StatefulSet", "Job", "CronJob"} <= kinds, kinds
    for where, spec in specs:
        assert restricted_violations(spec) == [], where


def test_the_pods_verify_starts_meet_the_restricted_profile(verify_documents):
    specs = pod_specs_of(verify_documents)
    assert [where for where, _ in specs] == ["Job/verify-load", "Job/verify-probe"]
    for where, spec in specs:
        assert restricted_violations(spec) == [], where


def test_the_namespace_enforces_audits_and_warns_about_the_restricted_profile(manifests):
    for name, documents in manifests.items():
        labels = one(documents, "Namespace")["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", name
            assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.34", name


# The database's old init container: root, CAP_CHOWN, a chown of the volume.
CHOWN = {
    "name": "volume-permissions",
    "image": "base",
    "securityContext": {
        "runAsUser": 0,
        "runAsNonRoot": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
    },
}


def test_the_rules_catch_each_breach_of_the_profile(manifests):
    good = one(manifests[NAMES[0]], "StatefulSet")["spec"]["template"]["spec"]
    assert restricted_violations(good) == []
    breaches = {
        "host namespaces": lambda spec: spec.update(hostNetwork=True),
        "HostProcess": lambda spec: spec["securityContext"].update(
            windowsOptions={"hostProcess": True}
        ),
        "privileged containers": lambda spec: spec["containers"][0]["securityContext"].update(
            privileged=True
        ),
        "capabilities: containers/": lambda spec: spec["containers"][0]["securityContext"].update(
            capabilities={"drop": ["ALL"], "add": ["NET_ADMIN"]}
        ),
        "does not drop ALL": lambda spec: spec["containers"][0]["securityContext"].update(
            capabilities={}
        ),
        "volume types": lambda spec: spec["volumes"].append(
            {"name": "host", "hostPath": {"path": "/"}}
        ),
        "host ports": lambda spec: spec["containers"][0]["ports"][0].update(hostPort=27017),
        "AppArmor": lambda spec: spec["securityContext"].update(
            appArmorProfile={"type": "Unconfined"}
        ),
        "SELinux": lambda spec: spec["securityContext"].update(seLinuxOptions={"type": "spc_t"}),
        "/proc mount type": lambda spec: spec["containers"][0]["securityContext"].update(
            procMount="Unmasked"
        ),
        "seccomp": lambda spec: spec["containers"][0]["securityContext"].update(
            seccompProfile={"type": "Unconfined"}
        ),
        "sysctls": lambda spec: spec["securityContext"].update(
            sysctls=[{"name": "net.core.somaxconn", "value": "1024"}]
        ),
        "privilege escalation": lambda spec: spec["containers"][0]["securityContext"].pop(
            "allowPrivilegeEscalation"
        ),
        "running as non-root:": lambda spec: spec["securityContext"].pop("runAsNonRoot"),
        "runs as uid 0": lambda spec: spec["containers"][0]["securityContext"].update(runAsUser=0),
        "initContainers/volume-permissions": lambda spec: spec.update(
            initContainers=[copy.deepcopy(CHOWN)]
        ),
    }
    for control, breach in breaches.items():
        spec = copy.deepcopy(good)
        breach(spec)
        found = restricted_violations(spec)
        assert any(control in line for line in found), (control, found)


def test_the_load_jobs_read_the_key_from_the_run_s_secret_and_trust_the_service_s_ca(
    verify_documents,
):
    job = one(verify_documents, "Job", "verify-load")
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert env["API_KEY"] == {
        "name": "API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "verify-api-key", "key": "key"}},
    }
    assert env["SSL_CERT_FILE"]["value"] == "/etc/flask-tls-ca/ca.crt"
    assert "--url=https://flask-service.flask-mongodb.svc:80/" in container["command"]
    assert {"name": "ca", "configMap": {"name": "flask-tls-ca"}} in spec["volumes"]
    assert "annotations" not in job["spec"]["template"]["metadata"]
