"""One valid and one invalid command-line value for every option of every role.

Values are strings, as `-e name=value` gives them. A valid value must pass the role's argument
spec and range checks and, for the roles with a render entry point, show in the manifests with
its type (`"6"` an integer, `"false"` a boolean); an invalid value must stop the role at its
argument spec or its range check, with a message that names the variable and says what it
accepts (`allowed`). `context` holds other options a case needs, as strings too. In values,
{repo} is the repository root and {render_dir} the directory the case renders into.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.settings import describe
from ansible_support import ROLES_DIR

Check = Callable[[list], None]

BOOL = "Valid booleans include"


@dataclass(frozen=True)
class Case:
    valid: str
    invalid: str
    allowed: str
    expect: Check | None = None
    context: dict[str, str] = field(default_factory=dict)
    # Further invalid values and what their messages say is accepted.
    more_invalid: tuple[tuple[str, str], ...] = ()
    # Why the role does not refuse the invalid values yet, or does not take the valid one: the
    # case is expected to fail until the role does (pytest reports it as xfail, then XPASS).
    gap: str = ""
    valid_gap: str = ""


def at(document: dict, path: str) -> object:
    """The value at a dotted path; numbers index lists."""
    value: object = document
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]  # type: ignore[index]
    return value


def component(name: str) -> Callable[[dict], bool]:
    """Selects the object whose app.kubernetes.io/component label is `name`."""
    return lambda document: document["metadata"]["labels"]["app.kubernetes.io/component"] == name


def the(documents: list, kind: str, where: Callable[[dict], bool] | None = None) -> dict:
    found = [doc for doc in documents if doc["kind"] == kind and (where is None or where(doc))]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def renders(
    kind: str, path: str, value: object, where: Callable[[dict], bool] | None = None
) -> Check:
    """The object of `kind` carries `value`, of the same type, at `path`."""

    def check(documents: list) -> None:
        actual = at(the(documents, kind, where), path)
        assert (actual, type(actual)) == (value, type(value)), (
            f"{kind} {path} is {actual!r}, expected {value!r}"
        )

    return check


def typed(kind: str, path: str, kind_of_value: type) -> Check:
    """The object of `kind` has a value of this type at `path`."""

    def check(documents: list) -> None:
        actual = at(the(documents, kind), path)
        assert isinstance(actual, kind_of_value), f"{kind} {path} is {actual!r}"

    return check


def lacks(kind: str) -> Check:
    def check(documents: list) -> None:
        kinds = [doc["kind"] for doc in documents]
        assert kind not in kinds, f"a {kind} was rendered"

    return check


def env(kind: str, name: str, value: object, where: Callable[[dict], bool] | None = None) -> Check:
    """The first container of the workload `kind` has the variable `name`: a value (str) or a
    valueFrom (dict)."""

    def check(documents: list) -> None:
        container = at(the(documents, kind, where), "spec.template.spec.containers.0")
        found = {
            item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]
        }
        assert found.get(name) == value, f"{kind} env {name} is {found.get(name)!r}"

    return check


def contains(
    kind: str, path: str, item: object, where: Callable[[dict], bool] | None = None
) -> Check:
    def check(documents: list) -> None:
        assert item in at(the(documents, kind, where), path), f"{item!r} not in {kind} {path}"

    return check


def all_of(*checks: Check) -> Check:
    def check(documents: list) -> None:
        for one_check in checks:
            one_check(documents)

    return check


def secret_value(key: str, value: str) -> Check:
    return renders("Secret", f"data.{key}", base64.b64encode(value.encode()).decode())


def database_ingress(document: dict) -> bool:
    """The database's ingress NetworkPolicy."""
    return "Ingress" in document["spec"]["policyTypes"]


def clients_egress(document: dict) -> bool:
    """The NetworkPolicy of the database's clients' egress (the only one with egress rules)."""
    return bool(document["spec"].get("egress"))


def dns_peer(selector: str, labels: dict) -> Check:
    """The clients' egress policy reaches DNS through a peer with this selector."""

    def check(documents: list) -> None:
        (peer,) = the(documents, "NetworkPolicy", clients_egress)["spec"]["egress"][1]["to"]
        assert peer[selector] == {"matchLabels": labels}, f"DNS peer is {peer!r}"

    return check


def serving_policy(document: dict) -> bool:
    """The Flask NetworkPolicy (not the namespace's default deny)."""
    return document["spec"]["podSelector"] != {}


def container_quantities(role: str, kind: str, cpu: str, memory: str) -> dict[str, Case]:
    """The cases of a role's <role>_cpu_request, _memory_request, _cpu_limit and _memory_limit,
    the requests and limits of the first container of its workload `kind` (`cpu` and `memory`:
    what the role's messages say it accepts)."""
    resources = "spec.template.spec.containers.0.resources"
    return {
        f"{role}_{name}": Case(valid, invalid, allowed, renders(kind, f"{resources}.{path}", valid))
        for name, path, valid, invalid, allowed in (
            ("cpu_request", "requests.cpu", "250m", "250 m", cpu),
            ("memory_request", "requests.memory", "300Mi", "300MB", memory),
            ("cpu_limit", "limits.cpu", "750m", "lots", cpu),
            ("memory_limit", "limits.memory", "1Gi", "1 GiB", memory),
        )
    }


FLASK = "spec.template.spec.containers.0"
DATABASE = "spec.template.spec.containers.0"
ENGINE = "spec.template.spec.containers.0"
HPA_ON = {"flaskapp_hpa_enabled": "true"}
HPA_OFF = {"flaskapp_hpa_enabled": "false"}
MONGODB_RESOURCES = (
    '{"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}}'
)
DB_CLIENT = {"db-client": "yes"}

TLS_DIR = {"flaskapp_tls_dir": "{render_dir}/tls"}
REPO_ROOT = Path(__file__).resolve().parents[2]


def named(name: str) -> Callable[[dict], bool]:
    return lambda document: document["metadata"]["name"] == name


def file_b64(path: str) -> str:
    """A file of the repository as the role puts it in a Secret (trailing space trimmed, one
    newline)."""
    text = (REPO_ROOT / path).read_text().rstrip() + "\n"
    return base64.b64encode(text.encode()).decode()


def labelled(kind: str, label: str, value: str) -> Check:
    """The object of `kind` carries the label `label` (a name with dots) with `value`."""

    def check(documents: list) -> None:
        actual = the(documents, kind)["metadata"]["labels"].get(label)
        assert actual == value, f"{kind} label {label} is {actual!r}, expected {value!r}"

    return check


def holds(kind: str, name: str, key: str, value: str) -> Check:
    """The object `name` of `kind` has `value` under data.`key` (a key with dots)."""

    def check(documents: list) -> None:
        actual = the(documents, kind, named(name))["data"][key]
        assert actual == value, f"{kind} {name} data {key} is {actual!r}, expected {value!r}"

    return check


FLASKAPP = {
    "flaskapp_database": Case(
        json.dumps(
            {
                "namespace": "flask-mongodb",
                "host": "db.example",
                "port": 27018,
                "database": "records",
                "secret_name": "db-credentials",
                "username_key": "user",
                "password_key": "pass",
                "client_labels": DB_CLIENT,
            }
        ),
        '{"host": "db.example"}',
        "namespace, host, port, database, secret_name, username_key, password_key, client_labels",
        all_of(
            env("Deployment", "MONGODB_HOST", "db.example"),
            env("Deployment", "MONGODB_PORT", "27018"),
            env("Deployment", "MONGODB_DATABASE", "records"),
            env(
                "Deployment",
                "MONGODB_USERNAME",
                {"secretKeyRef": {"name": "db-credentials", "key": "user"}},
            ),
            renders("Deployment", "spec.template.metadata.labels.db-client", "yes"),
        ),
        more_invalid=(('["x"]', "unable to convert to dict"),),
    ),
    "flaskapp_api_keys": Case(
        json.dumps([{"name": "ci", "scope": "read", "key": "k" * 43}]),
        json.dumps([{"name": "ci bot", "scope": "admin", "key": "k" * 43}]),
        "needs a scope of read or write",
        holds(
            "Secret",
            "flask-api-keys",
            "api-keys.json",
            base64.b64encode(
                json.dumps(
                    [
                        {
                            "name": "ci",
                            "scope": "read",
                            "sha256": hashlib.sha256(b"k" * 43).hexdigest(),
                        }
                    ],
                    separators=(",", ":"),
                ).encode()
            ).decode(),
        ),
        more_invalid=(
            (json.dumps([{"name": "ci", "scope": "read", "key": "short"}]), "at least 32"),
            ('{"name": "ci"}', "must be a list"),
        ),
    ),
    "flaskapp_credentials_checksum": Case(
        "ab" * 32,
        "not-a-checksum",
        "64 hexadecimal digits",
        renders("Deployment", "spec.template.metadata.annotations.checksum/credentials", "ab" * 32),
    ),
    "flaskapp_namespace": Case(
        "shop",
        "Shop",
        "DNS label",
        all_of(
            renders("Deployment", "metadata.namespace", "shop"),
            renders("Service", "metadata.namespace", "shop"),
        ),
    ),
    "flaskapp_name": Case(
        "web",
        "Web",
        "DNS label of at most 40 characters",
        all_of(
            renders("Deployment", "metadata.name", "web"),
            renders("HorizontalPodAutoscaler", "spec.scaleTargetRef.name", "web"),
            renders("PodDisruptionBudget", "metadata.name", "web"),
        ),
        HPA_ON,
    ),
    "flaskapp_image": Case(
        "registry.example.com/team/flask:1.0",
        "flask app:latest",
        "image reference",
        renders("Deployment", f"{FLASK}.image", "registry.example.com/team/flask:1.0"),
    ),
    "flaskapp_image_pull_policy": Case(
        "Always",
        "Sometimes",
        "one of: IfNotPresent, Always, Never",
        renders("Deployment", f"{FLASK}.imagePullPolicy", "Always"),
    ),
    "flaskapp_replicas": Case(
        "3",
        "0",
        "from 1 to 50",
        renders("Deployment", "spec.replicas", 3),
        HPA_OFF,
        more_invalid=(("many", "unable to convert to int"),),
    ),
    **container_quantities(
        "flaskapp",
        "Deployment",
        "a CPU quantity such as 200m or 1",
        "a memory quantity such as 250Mi",
    ),
    "flaskapp_hpa_enabled": Case(
        "false",
        "maybe",
        BOOL,
        all_of(
            lacks("HorizontalPodAutoscaler"),
            typed("Deployment", "spec.replicas", int),
        ),
    ),
    "flaskapp_hpa_min_replicas": Case(
        "3",
        "0",
        "from 1 to 50",
        renders("HorizontalPodAutoscaler", "spec.minReplicas", 3),
        HPA_ON,
    ),
    "flaskapp_hpa_max_replicas": Case(
        "6",
        "51",
        "to 50",
        renders("HorizontalPodAutoscaler", "spec.maxReplicas", 6),
        {**HPA_ON, "flaskapp_hpa_min_replicas": "2"},
        more_invalid=(("1", "from flaskapp_hpa_min_replicas (2) to 50"),),
    ),
    "flaskapp_hpa_cpu_target": Case(
        "80",
        "0",
        "from 1 to 100",
        renders("HorizontalPodAutoscaler", "spec.metrics.0.resource.target.averageUtilization", 80),
        HPA_ON,
    ),
    "flaskapp_hpa_scale_down_stabilization": Case(
        "60",
        "-1",
        "from 0 to 3600",
        renders(
            "HorizontalPodAutoscaler", "spec.behavior.scaleDown.stabilizationWindowSeconds", 60
        ),
        HPA_ON,
    ),
    "flaskapp_service_name": Case(
        "web-service",
        "9web",
        "DNS label that starts with a letter",
        renders("Service", "metadata.name", "web-service"),
    ),
    "flaskapp_service_port": Case(
        "8080", "0", "from 1 to 65535", renders("Service", "spec.ports.0.port", 8080)
    ),
    "flaskapp_node_port": Case(
        "30090", "8080", "from 30000 to 32767", renders("Service", "spec.ports.0.nodePort", 30090)
    ),
    "flaskapp_container_port": Case(
        "8081",
        "80",
        "from 1024 to 65535",
        all_of(
            renders("Deployment", f"{FLASK}.ports.0.containerPort", 8081),
            env("Deployment", "PORT", "8081"),
            renders("NetworkPolicy", "spec.ingress.0.ports.0.port", 8081, serving_policy),
        ),
        {"flaskapp_network_policy_enabled": "true"},
    ),
    "flaskapp_tls": Case(
        "true",
        "maybe",
        "must be one of: auto",
        all_of(
            env("Deployment", "APP_TLS_CERT_FILE", "/etc/flask-tls/tls.crt"),
            renders("Secret", "type", "kubernetes.io/tls", named("flask-tls")),
            renders("Deployment", f"{FLASK}.readinessProbe.httpGet.scheme", "HTTPS"),
        ),
        TLS_DIR,
    ),
    "flaskapp_api_exposure": Case(
        "network",
        "lan",
        "one of: loopback, host, network",
        env("Deployment", "APP_TLS_KEY_FILE", "/etc/flask-tls/tls.key"),
        TLS_DIR,
    ),
    # The role delivers your own files as they are: any readable file shows in the Secret.
    "flaskapp_tls_cert_file": Case(
        "{repo}/README.md",
        "/nonexistent/server.crt",
        "must be empty or an existing file on this host",
        holds("Secret", "flask-tls", "tls.crt", file_b64("README.md")),
        {"flaskapp_tls": "true", "flaskapp_tls_key_file": "{repo}/Makefile"},
        more_invalid=(("", "go together: give both"),),
    ),
    "flaskapp_tls_key_file": Case(
        "{repo}/Makefile",
        "/nonexistent/server.key",
        "must be empty or an existing file on this host",
        holds("Secret", "flask-tls", "tls.key", file_b64("Makefile")),
        {"flaskapp_tls": "true", "flaskapp_tls_cert_file": "{repo}/README.md"},
    ),
    "flaskapp_tls_ca_file": Case(
        "{repo}/Dockerfile",
        "/nonexistent/ca.crt",
        "must be empty or an existing file on this host",
        holds(
            "ConfigMap",
            "flask-tls-ca",
            "ca.crt",
            (REPO_ROOT / "Dockerfile").read_text().rstrip() + "\n",
        ),
        {
            "flaskapp_tls": "true",
            "flaskapp_tls_cert_file": "{repo}/README.md",
            "flaskapp_tls_key_file": "{repo}/Makefile",
        },
    ),
    "flaskapp_tls_dir": Case("{render_dir}/certificates", "certificates", "absolute path"),
    "flaskapp_tls_days": Case("90", "10", "from 30 to 3650", context=TLS_DIR),
    "flaskapp_tls_renew_days": Case("10", "0", "from 1 to flaskapp_tls_days - 1", context=TLS_DIR),
    "flaskapp_metrics_port": Case(
        "9200",
        "80",
        "from 1024 to 65535",
        all_of(
            renders("Deployment", f"{FLASK}.ports.1.containerPort", 9200),
            env("Deployment", "APP_METRICS_PORT", "9200"),
            renders("NetworkPolicy", "spec.ingress.1.ports.0.port", 9200, serving_policy),
        ),
        {"flaskapp_network_policy_enabled": "true"},
    ),
    "flaskapp_drain_seconds": Case(
        "5",
        "121",
        "from 0 to 120",
        all_of(
            renders("Deployment", f"{FLASK}.lifecycle.preStop.sleep.seconds", 5),
            renders("Deployment", "spec.template.spec.terminationGracePeriodSeconds", 35),
        ),
    ),
    "flaskapp_network_policy_enabled": Case("false", "maybe", BOOL, lacks("NetworkPolicy")),
    "flaskapp_log_level": Case(
        "DEBUG",
        "VERBOSE",
        "one of: DEBUG, INFO, WARNING, ERROR, CRITICAL",
        env("Deployment", "LOG_LEVEL", "DEBUG"),
    ),
    "flaskapp_gunicorn_workers": Case(
        "4", "0", "from 1 to 32", env("Deployment", "GUNICORN_WORKERS", "4")
    ),
    "flaskapp_gunicorn_worker_connections": Case(
        "500", "5", "from 10 to 20000", env("Deployment", "GUNICORN_WORKER_CONNECTIONS", "500")
    ),
    "flaskapp_extra_env": Case(
        '{"APP_MAX_BODY_BYTES": 1024}',
        '{"DB_PASSWORD": "x"}',
        "must not carry credentials",
        env("Deployment", "APP_MAX_BODY_BYTES", "1024"),
        more_invalid=(('["x"]', "unable to convert to dict"), ('{"1A": "x"}', "variable names")),
    ),
    "flaskapp_node_address": Case("192.0.2.9", "http://192.0.2.9", "host name or IP address"),
    "flaskapp_wait_timeout": Case("600", "10", "from 30 to 3600"),
    "flaskapp_reconcile": Case("true", "maybe", BOOL),
    "flaskapp_render_dir": Case("{render_dir}", "rendered", "absolute path"),
}

NETWORK_POLICY_ON = {"mongodb_network_policy_enabled": "true"}
STATEFULSET = "StatefulSet"

MONGODB = {
    "mongodb_namespace": Case(
        "records-db",
        "Records",
        "DNS label",
        all_of(
            renders("Namespace", "metadata.name", "records-db"),
            renders(STATEFULSET, "metadata.namespace", "records-db"),
        ),
    ),
    "mongodb_name": Case(
        "db",
        "DB",
        "DNS label of at most 40 characters",
        renders(STATEFULSET, "metadata.name", "db"),
    ),
    "mongodb_engine": Case(
        "ferretdb",
        "postgres",
        "one of: mongodb, ferretdb",
        renders(STATEFULSET, f"{DATABASE}.name", "ferretdb"),
    ),
    "mongodb_official_image": Case(
        "mongo:7.0",
        "Mongo 7",
        "image reference",
        renders(STATEFULSET, f"{DATABASE}.image", "mongo:7.0"),
        {"mongodb_engine": "mongodb"},
    ),
    "mongodb_ferretdb_image": Case(
        "registry.example.com/ferretdb:1.24.2",
        "FerretDB",
        "image reference",
        renders(STATEFULSET, f"{DATABASE}.image", "registry.example.com/ferretdb:1.24.2"),
        {"mongodb_engine": "ferretdb"},
    ),
    "mongodb_image_pull_policy": Case(
        "Never",
        "Maybe",
        "one of: IfNotPresent, Always, Never",
        renders(STATEFULSET, f"{DATABASE}.imagePullPolicy", "Never"),
    ),
    "mongodb_provision_image": Case(
        "registry.example.com/flask:2",
        "bad image!",
        "image reference",
        renders("Job", f"{FLASK}.image", "registry.example.com/flask:2"),
    ),
    "mongodb_provision_timeout": Case(
        "600", "30", "from 60 to 3600", renders("Job", "spec.activeDeadlineSeconds", 600)
    ),
    "mongodb_root_username": Case(
        "admin", "", "non-empty user name", secret_value("root-username", "admin")
    ),
    "mongodb_root_password": Case(
        "another-root-password",
        "short",
        "12 characters or more",
        secret_value("root-password", "another-root-password"),
    ),
    "mongodb_app_username": Case(
        "records",
        "admin",
        "other than mongodb_root_username",
        secret_value("app-username", "records"),
        {"mongodb_root_username": "admin"},
    ),
    "mongodb_app_password": Case(
        "another-app-password",
        "tiny",
        "12 characters or more",
        secret_value("app-password", "another-app-password"),
    ),
    "mongodb_secret_name": Case(
        "db-credentials",
        "DB Credentials",
        "DNS subdomain",
        all_of(
            renders("Secret", "metadata.name", "db-credentials"),
            env(
                "Job",
                "MONGODB_PASSWORD",
                {"secretKeyRef": {"name": "db-credentials", "key": "app-password"}},
            ),
        ),
    ),
    "mongodb_database": Case(
        "records", "my db", "1-63 letters, digits", env("Job", "MONGODB_DATABASE", "records")
    ),
    "mongodb_service_name": Case(
        "db-service",
        "1db",
        "DNS label that starts with a letter",
        all_of(
            renders("Service", "metadata.name", "db-service"),
            renders(STATEFULSET, "spec.serviceName", "db-service"),
        ),
    ),
    "mongodb_port": Case(
        "27018",
        "70000",
        "from 1 to 65535",
        all_of(
            renders("Service", "spec.ports.0.port", 27018),
            renders(STATEFULSET, f"{DATABASE}.ports.0.containerPort", 27018),
            renders("NetworkPolicy", "spec.ingress.0.ports.0.port", 27018, database_ingress),
            env("Job", "MONGODB_PORT", "27018"),
        ),
        NETWORK_POLICY_ON,
    ),
    "mongodb_storage_size": Case(
        "2Gi",
        "2GB",
        "quantity such as 1Gi",
        renders(STATEFULSET, "spec.volumeClaimTemplates.0.spec.resources.requests.storage", "2Gi"),
    ),
    "mongodb_storage_class": Case(
        "fast-ssd",
        "Fast_SSD",
        "StorageClass name",
        renders(STATEFULSET, "spec.volumeClaimTemplates.0.spec.storageClassName", "fast-ssd"),
    ),
    "mongodb_resources": Case(
        MONGODB_RESOURCES,
        MONGODB_RESOURCES.replace("200m", "lots"),
        "each with a CPU quantity (100m, 1) and a memory quantity",
        renders(STATEFULSET, f"{DATABASE}.resources", json.loads(MONGODB_RESOURCES)),
        more_invalid=(
            ('{"requests": {"cpu": "1", "memory": "1Gi"}}', "missing required arguments: limits"),
            ('["x"]', "unable to convert to dict"),
        ),
    ),
    "mongodb_pod_security_level": Case(
        "baseline",
        "strict",
        "one of: restricted, baseline, privileged",
        labelled("Namespace", "pod-security.kubernetes.io/enforce", "baseline"),
    ),
    "mongodb_pod_security_version": Case(
        "v1.33",
        "1.33",
        "latest or v1.MINOR",
        labelled("Namespace", "pod-security.kubernetes.io/warn-version", "v1.33"),
    ),
    "mongodb_network_policy_enabled": Case("false", "maybe", BOOL, lacks("NetworkPolicy")),
    "mongodb_dns_namespace_labels": Case(
        '{"name": "dns"}',
        '{"name": "kube system"}',
        "map of Kubernetes label names to values",
        dns_peer("namespaceSelector", {"name": "dns"}),
        NETWORK_POLICY_ON,
        more_invalid=(('["x"]', "unable to convert to dict"),),
    ),
    "mongodb_dns_pod_labels": Case(
        '{"app": "node-local-dns"}',
        "{}",
        "map of Kubernetes label names to values",
        dns_peer("podSelector", {"app": "node-local-dns"}),
        NETWORK_POLICY_ON,
    ),
    "mongodb_client_labels": Case(
        json.dumps(DB_CLIENT),
        '{"bad key!": "x"}',
        "map of Kubernetes label names",
        all_of(
            renders(
                "NetworkPolicy",
                "spec.ingress.0.from.0.podSelector.matchLabels",
                DB_CLIENT,
                database_ingress,
            ),
            renders("NetworkPolicy", "spec.podSelector.matchLabels", DB_CLIENT, clients_egress),
        ),
        NETWORK_POLICY_ON,
        more_invalid=(("{}", "non-empty map"),),
    ),
    "mongodb_wait_timeout": Case("600", "10", "from 30 to 3600"),
    "mongodb_reconcile": Case("true", "maybe", BOOL),
    "mongodb_render_dir": Case("{render_dir}", "rendered", "absolute path"),
}

ENGINE_ARGS = f"{ENGINE}.args"

NETWORK_POLICY = {
    "network_policy_state": Case("absent", "gone", "one of: present, absent"),
    "network_policy_namespace": Case(
        "netpol", "Kube System", "DNS label", renders("DaemonSet", "metadata.namespace", "netpol")
    ),
    "network_policy_name": Case(
        "policy-engine",
        "Policy",
        "DNS label that starts with a letter",
        renders("DaemonSet", "metadata.name", "policy-engine"),
    ),
    "network_policy_kubeconfig": Case("/tmp/admin.kubeconfig", "", "kubeconfig"),
    "network_policy_context": Case("flask-k8s-local", "my context", "context"),
    "network_policy_image_delivery": Case(
        "containerd", "scp", "one of: minikube, containerd, registry"
    ),
    "network_policy_image_target": Case(
        "/run/flask-k8s/containerd/containerd.sock", "", "image_target"
    ),
    "network_policy_image_repository": Case(
        "registry.example.com/kube-router", "Kube Router", "repository"
    ),
    "network_policy_base_image": Case("flask-k8s/netfilter-base:trixie", "Base Image", "image"),
    "network_policy_base_script": Case(
        "scripts/build-base-image.sh", "scripts/missing.sh", "script"
    ),
    "network_policy_base_packages": Case(
        '["iptables", "ipset", "conntrack"]',
        '["Not A Package"]',
        "package",
    ),
    "network_policy_project_dir": Case("{repo}", "/nonexistent", "directory"),
    "network_policy_cache_dir": Case("/var/cache/flask-k8s", "relative/cache", "absolute path"),
    "network_policy_service_cidr": Case(
        "10.96.0.0/16",
        "everything",
        "one or two CIDRs",
        contains("DaemonSet", ENGINE_ARGS, "--service-cluster-ip-range=10.96.0.0/16"),
    ),
    "network_policy_node_port_range": Case(
        "30000-31000",
        "30000",
        "FIRST-LAST",
        contains("DaemonSet", ENGINE_ARGS, "--service-node-port-range=30000-31000"),
    ),
    "network_policy_health_port": Case(
        "20300",
        "80",
        "from 1024 to 65535",
        all_of(
            renders("DaemonSet", f"{ENGINE}.livenessProbe.httpGet.port", 20300),
            contains("DaemonSet", ENGINE_ARGS, "--health-port=20300"),
        ),
    ),
    "network_policy_sync_period": Case(
        "600",
        "5",
        "from 10 to 86400",
        contains("DaemonSet", ENGINE_ARGS, "--iptables-sync-period=600s"),
    ),
    "network_policy_iptables_mode": Case(
        "legacy",
        "iptables",
        "one of: auto, nft, legacy",
        env("DaemonSet", "IPTABLES_MODE", "legacy"),
    ),
    "network_policy_log_level": Case(
        "2", "9", "from 0 to 5", contains("DaemonSet", ENGINE_ARGS, "--v=2")
    ),
    **container_quantities(
        "network_policy",
        "DaemonSet",
        "a CPU quantity such as 200m or 1",
        "a memory quantity such as 250Mi",
    ),
    "network_policy_wait_timeout": Case("300", "5", "from 10 to 3600"),
    "network_policy_reconcile": Case("true", "maybe", BOOL),
    "network_policy_render_dir": Case("{render_dir}", "rendered", "absolute path"),
    "network_policy_render_image": Case(
        "registry.example.com/kube-router:test",
        "Bad Image",
        "image reference",
        renders("DaemonSet", f"{ENGINE}.image", "registry.example.com/kube-router:test"),
    ),
}

CLUSTER = {
    "cluster_provider": Case("local", "kind", "one of: auto, minikube, existing, local"),
    "cluster_state": Case("connected", "running", "one of: present, connected, absent"),
    "cluster_network_policy": Case("false", "maybe", BOOL),
    "cluster_delete_data": Case("true", "maybe", BOOL),
}

DOCKER_ENGINE = {
    "docker_engine_state": Case("stopped", "paused", "one of: started, stopped"),
    # Privileged, the script installs the runc wrapper that lies beside it.
    "docker_engine_script": Case(
        "{repo}/scripts/docker-engine.sh",
        "/nonexistent/docker-engine.sh",
        "engine script",
        context={"docker_engine_privileged": "true"},
        more_invalid=(("{repo}/Makefile", "needs runc-wrapper.sh beside docker_engine_script"),),
    ),
    "docker_engine_wait_seconds": Case("120", "0", "from 1 to 600"),
    "docker_engine_privileged": Case("true", "maybe", BOOL),
}

EXISTING_CLUSTER = {
    "existing_cluster_kubeconfig": Case("/tmp/kubeconfig", "", "path of a kubeconfig"),
    "existing_cluster_context": Case("gke_project_zone_cluster", "my context", "without spaces"),
    "existing_cluster_image_registry": Case(
        "registry.example.com:5000/team", "https://registry.example.com", "host[:port]"
    ),
    "existing_cluster_node_address": Case(
        "192.0.2.10", "http://192.0.2.10", "host name or IP address"
    ),
    "existing_cluster_storage_class": Case("fast-ssd", "Fast_SSD", "StorageClass name"),
    "existing_cluster_pulls_images": Case("false", "maybe", BOOL),
    "existing_cluster_volumes_honour_fsgroup": Case("false", "maybe", BOOL),
    "existing_cluster_enforces_network_policy": Case("false", "maybe", BOOL),
}

IMAGE_FILE = "file in image_project_dir"
IN_REPO = {"image_project_dir": "{repo}"}

IMAGE = {
    "image_project_dir": Case("{repo}", "/nonexistent", "repository root"),
    "image_flaskapp_repository": Case(
        "registry.example.com/team/flaskapp", "Flask/App", "image repository (no tag)"
    ),
    "image_flaskapp_dockerfile": Case(
        "Dockerfile", "Dockerfile.missing", IMAGE_FILE, context=IN_REPO
    ),
    "image_flaskapp_hash_dirs": Case(
        '["app"]', '["../outside"]', "relative paths inside image_project_dir"
    ),
    "image_flaskapp_hash_files": Case(
        "Dockerfile,.dockerignore", "/etc/passwd", "relative paths inside image_project_dir"
    ),
    "image_base_image": Case("python:3.12-slim-bookworm", "Python 3.12", "image reference"),
    "image_base_build_arg": Case("PYTHON_IMAGE", "BASE-IMAGE", "build argument name"),
    "image_base_local_image": Case("flask-k8s/python-base:trixie", "Base Image", "image reference"),
    "image_base_build_script": Case(
        "scripts/build-base-image.sh", "scripts/missing.sh", IMAGE_FILE, context=IN_REPO
    ),
    "image_ferretdb_enabled": Case("false", "maybe", BOOL),
    "image_ferretdb_repository": Case(
        "registry.example.com/ferretdb", "FerretDB", "image repository (no tag)"
    ),
    "image_ferretdb_version": Case("1.24.1", "latest", "version such as 1.24.2"),
    "image_ferretdb_build_script": Case(
        "scripts/ferretdb.sh", "scripts/missing.sh", IMAGE_FILE, context=IN_REPO
    ),
    "image_ferretdb_dockerfile": Case(
        "images/ferretdb/Dockerfile", "images/missing/Dockerfile", IMAGE_FILE, context=IN_REPO
    ),
    "image_ferretdb_context_dir": Case(
        "/tmp/ferretdb-context", "contexts/ferretdb", "absolute path"
    ),
    "image_delivery": Case(
        "registry",
        "scp",
        "one of: minikube, containerd, registry",
        context={"image_target": "registry.example.com:5000"},
    ),
    "image_target": Case(
        "dev.profile",
        "not a profile!",
        "minikube profile name",
        context={"image_delivery": "minikube"},
    ),
    "image_reconcile": Case("true", "maybe", BOOL),
}

ABSOLUTE = "absolute path"

LOCAL_CLUSTER = {
    "local_cluster_state": Case("absent", "stopped", "one of: present, absent"),
    "local_cluster_reconcile": Case("true", "always", BOOL),
    "local_cluster_dir": Case("/srv/flask-k8s/cluster", "cluster", ABSOLUTE),
    "local_cluster_containerd_run_dir": Case("/run/fk8s/containerd", "run/containerd", ABSOLUTE),
    "local_cluster_containerd_socket": Case(
        "/run/fk8s/containerd/containerd.sock", "containerd.sock", ABSOLUTE
    ),
    "local_cluster_build_script": Case(
        "{repo}/cluster/build.sh", "/nonexistent/build.sh", "existing file"
    ),
    "local_cluster_images_dir": Case("{repo}/images", "/nonexistent/images", "existing directory"),
    "local_cluster_cache_dir": Case("/var/cache/flask-k8s", "cache", ABSOLUTE),
    "local_cluster_ready_timeout": Case("300", "5", "from 10 to 3600"),
    "local_cluster_packages": Case(
        '["containerd", "runc", "iptables"]',
        '["containerd", "Not A Package"]',
        "Debian package names",
    ),
    "local_cluster_cni_bin_dir": Case("/opt/cni/bin", "cni", ABSOLUTE),
    "local_cluster_node_name": Case("node-1", "Node_1", "DNS label"),
    "local_cluster_node_address": Case("192.0.2.20", "node.example", "IPv4 address"),
    "local_cluster_api_exposure": Case("network", "public", "one of: loopback, network"),
    "local_cluster_apiserver_port": Case("7443", "70000", "from 1 to 65535"),
    "local_cluster_context": Case("local", "my cluster", "without spaces"),
    "local_cluster_kubeconfig": Case("/tmp/admin.kubeconfig", "admin.kubeconfig", ABSOLUTE),
    "local_cluster_pod_cidr": Case("10.200.0.0/16", "10.200.0.0", "IPv4 network"),
    "local_cluster_service_cidr": Case(
        "10.100.0.0/16",
        "10.96.0.0/28",
        "/12 to /24",
        context={"local_cluster_dns_ip": "10.100.0.10"},
    ),
    "local_cluster_dns_ip": Case(
        "10.96.0.53",
        "10.97.0.10",
        "inside local_cluster_service_cidr",
        context={
            "local_cluster_service_cidr": "10.96.0.0/24",
            "local_cluster_pod_cidr": "10.244.0.0/24",
        },
    ),
    "local_cluster_domain": Case("cluster.example", "Cluster_Local", "DNS domain"),
    "local_cluster_bridge": Case("k8sbr0", "a-bridge-name-longer-than-15", "1 to 15"),
    "local_cluster_nodeport_range": Case("30000-31000", "32767-30000", "FIRST-LAST"),
    "local_cluster_storage_class": Case("local-disk", "Local_Disk", "StorageClass name"),
    "local_cluster_volumes_dir": Case(
        "/srv/flask-k8s/volumes",
        "/tmp/volumes",
        "outside /tmp",
        more_invalid=(
            ("volumes", ABSOLUTE),
            ("/var/lib/flask-k8s/cluster/volumes", "local_cluster_dir"),
        ),
    ),
    "local_cluster_delete_volumes": Case("true", "maybe", BOOL),
    "local_cluster_coredns_enabled": Case("false", "maybe", BOOL),
    "local_cluster_metrics_server_enabled": Case("false", "maybe", BOOL),
    "local_cluster_coredns_replicas": Case("2", "0", "from 1 to 10"),
    "local_cluster_cert_days": Case("730", "0", "from 1 to 3650"),
    "local_cluster_cert_renew_days": Case(
        "60", "365", "from 1 to local_cluster_cert_days - 1", more_invalid=(("0", "from 1"),)
    ),
    "local_cluster_log_verbosity": Case("4", "11", "from 0 to 10"),
}

MINIKUBE = {
    "minikube_state": Case("stopped", "paused", "one of: present, stopped, absent"),
    "minikube_profile": Case("dev.cluster", "start", "profile name"),
    "minikube_driver": Case("podman", "lxc", "one of: docker"),
    "minikube_cpus": Case("4", "1", "from 2 to 64"),
    "minikube_memory": Case("8192", "1024", "from 1800 to"),
    "minikube_kubernetes_version": Case("v1.33.1", "1.34", "version such as v1.34.0"),
    "minikube_force": Case("true", "maybe", BOOL),
    "minikube_start_args": Case('["--addons=ingress"]', '["ingress"]', "each starting with --"),
    "minikube_metrics_timeout": Case("600", "0", "from 10 to 3600"),
    "minikube_kubeconfig": Case("~/.kube/config", "kubeconfig", ABSOLUTE),
    "minikube_offline": Case("true", "maybe", BOOL),
    "minikube_home": Case("~/.minikube-offline", "minikube-home", ABSOLUTE),
}

DUMP = component("backup")
RESTORE = component("restore")
COPY = component("backup-copy")
DRILL = component("drill")
STATUS = component("backup-status")
PRUNE = component("backup-prune")
BACKUP = {
    "backup_database": Case(
        json.dumps(
            {
                "namespace": "flask-mongodb",
                "host": "db.example",
                "port": 27018,
                "database": "records",
                "secret_name": "db-credentials",
                "username_key": "user",
                "password_key": "pass",
                "client_labels": DB_CLIENT,
                "statefulset": "db",
            }
        ),
        '{"host": "db.example"}',
        "namespace, host, port, database, secret_name, username_key, password_key, client_labels",
        env("Job", "MONGODB_HOST", "db.example", DUMP),
    ),
    "backup_namespace": Case(
        "backups",
        "Backups",
        "DNS label",
        renders("PersistentVolumeClaim", "metadata.namespace", "backups"),
    ),
    "backup_image": Case(
        "registry.example.com/flask:3",
        "Bad Image",
        "image reference",
        renders("Job", f"{FLASK}.image", "registry.example.com/flask:3", DUMP),
    ),
    "backup_image_pull_policy": Case(
        "Always",
        "Sometimes",
        "one of: IfNotPresent, Always, Never",
        renders("Job", f"{FLASK}.imagePullPolicy", "Always", DUMP),
    ),
    "backup_provider": Case("existing", "kind", "one of: local, minikube, existing"),
    "backup_claim_name": Case(
        "db-backups",
        "DB Backups",
        "DNS subdomain",
        renders("PersistentVolumeClaim", "metadata.name", "db-backups"),
    ),
    "backup_storage_size": Case(
        "5Gi",
        "5GB",
        "quantity such as 2Gi",
        renders("PersistentVolumeClaim", "spec.resources.requests.storage", "5Gi"),
    ),
    "backup_storage_class": Case(
        "fast-ssd",
        "Fast_SSD",
        "StorageClass name",
        renders("PersistentVolumeClaim", "spec.storageClassName", "fast-ssd"),
    ),
    "backup_resources": Case(
        MONGODB_RESOURCES,
        MONGODB_RESOURCES.replace("200m", "lots"),
        "each with a CPU quantity (100m, 1) and a memory quantity",
        renders("Job", f"{FLASK}.resources", json.loads(MONGODB_RESOURCES), DUMP),
    ),
    "backup_job_timeout": Case(
        "7200",
        "30",
        "from 60 to 86400",
        renders("Job", "spec.activeDeadlineSeconds", 7200, DUMP),
    ),
    "backup_job_ttl": Case(
        "3600",
        "10",
        "from 60 to 2592000",
        renders("Job", "spec.ttlSecondsAfterFinished", 3600, DUMP),
    ),
    "backup_schedule_enabled": Case("true", "maybe", BOOL),
    "backup_schedule": Case(
        "30 2 * * 1-5",
        "daily",
        "cron schedule of five fields",
        all_of(
            renders("CronJob", "spec.schedule", "30 2 * * 1-5"),
            # status judges the scheduled backups by the longest gap: Friday to Monday.
            renders(
                "Job",
                f"{FLASK}.command",
                ["python", "-m", "flaskapp.backup", "status", "--max-age-seconds", "259200"],
                STATUS,
            ),
        ),
        {"backup_schedule_enabled": "true"},
    ),
    "backup_schedule_time_zone": Case(
        "Europe/Paris",
        "Paris time",
        "IANA time zone",
        renders("CronJob", "spec.timeZone", "Europe/Paris"),
    ),
    "backup_keep": Case(
        "14",
        "0",
        "from 1 to 1000",
        all_of(
            contains("CronJob", f"spec.jobTemplate.{FLASK}.command", "14"),
            contains("Job", f"{FLASK}.command", "14", PRUNE),
        ),
    ),
    "backup_prune_min_ratio": Case(
        "0.25",
        "2",
        "from 0 to 1",
        all_of(
            contains("CronJob", f"spec.jobTemplate.{FLASK}.command", "0.25"),
            contains("Job", f"{FLASK}.command", "0.25", PRUNE),
        ),
        more_invalid=(("-0.5", "from 0 to 1"),),
    ),
    "backup_name": Case(
        "backup-20260101.archive",
        "../etc",
        "latest or a file name",
        contains("Job", f"{FLASK}.command", "backup-20260101.archive", RESTORE),
        {"backup_restore_file": ""},
    ),
    "backup_restore_file": Case(
        "/tmp/backups/records.archive",
        "relative.archive",
        "absolute path",
        contains("Job", f"{FLASK}.command", "records.archive", RESTORE),
    ),
    "backup_replace": Case(
        "true", "maybe", BOOL, contains("Job", f"{FLASK}.command", "--replace", RESTORE)
    ),
    "backup_recover": Case("true", "maybe", BOOL),
    "backup_drill_match": Case(
        '{"data.marker": "run-7"}',
        "[1]",
        "unable to convert to dict",
        contains("Job", f"{FLASK}.command", '{"data.marker": "run-7"}', DRILL),
    ),
    "backup_fetch_dir": Case("/tmp/fetched", "fetched", "absolute path"),
    "backup_transfer_timeout": Case(
        "900",
        "5",
        "from 60 to 86400",
        all_of(
            renders("Job", f"{FLASK}.command", ["sleep", "900"], COPY),
            renders("Job", "spec.activeDeadlineSeconds", 900, COPY),
        ),
    ),
    "backup_render_dir": Case("{render_dir}", "rendered", "absolute path"),
}

WRITTEN: dict[str, dict[str, Case]] = {
    "cluster": CLUSTER,
    "minikube": MINIKUBE,
    "local_cluster": LOCAL_CLUSTER,
    "existing_cluster": EXISTING_CLUSTER,
    "docker_engine": DOCKER_ENGINE,
    "image": IMAGE,
    "mongodb": MONGODB,
    "flaskapp": FLASKAPP,
    "network_policy": NETWORK_POLICY,
    "backup": BACKUP,
}


def boundaries(option: dict) -> tuple[tuple[str, str], ...]:
    """The values just outside an option's numeric range (its `checks` in the argument spec),
    each with what the refusal says is accepted: both ends of every range are enforced."""
    checks = option.get("checks") or {}
    kind = option.get("type")
    low, high = checks.get("min"), checks.get("max")
    numbers = all(isinstance(bound, int | float) for bound in (low, high))
    if kind not in ("int", "float") or not numbers or "means" in checks:
        return ()
    step = 1 if kind == "int" else 0.001
    outside = [value for value in (low - step, high + step) if value != checks.get("off_value")]
    return tuple((str(value), describe(kind, checks)) for value in outside)


def with_boundaries(role: str, cases: dict[str, Case]) -> dict[str, Case]:
    """The role's written cases with the boundaries of their ranges added, and a case for each
    option with a numeric range that has none written: its greatest value accepted, the value
    past it refused. A new integer setting with a range needs no case written by hand."""
    specs = yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    found = {}
    for option, spec in options.items():
        edges = boundaries(spec)
        case = cases.get(option)
        if case is None and edges:
            checks = spec["checks"]
            case = Case(str(checks["max"]), edges[-1][0], edges[-1][1])
        if case is None:
            continue
        written = {case.invalid, *(value for value, _ in case.more_invalid)}
        more = tuple(edge for edge in edges if edge[0] not in written)
        found[option] = replace(case, more_invalid=case.more_invalid + more) if more else case
    # A written case of an option the role no longer has stays, so that the test that pairs
    # options with cases names it.
    return found | {option: case for option, case in cases.items() if option not in options}


# The written cases, and for every option with a numeric range, its two boundaries (and a
# case, when none is written).
CASES: dict[str, dict[str, Case]] = {
    role: with_boundaries(role, cases) for role, cases in WRITTEN.items()
}
