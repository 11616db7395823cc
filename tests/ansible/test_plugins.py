"""The plays' own plugins: the k8s_manifests filter and the k8s_objects module's paths,
identities and comparison.

The module against a real API server is exercised by tests/existing/run.sh (make
test-cluster): objects deleted or edited by hand are restored by the next site.yml run, which
changes nothing afterwards, and a forced apply changes nothing either.
"""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from ansible_support import PLUGINS, ROLES_DIR


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


FILTERS = load(PLUGINS / "filter" / "kubernetes.py", "flask_k8s_filters")
OBJECTS = load(PLUGINS / "modules" / "k8s_objects.py", "flask_k8s_k8s_objects")
TESTS = load(PLUGINS / "test" / "kubernetes.py", "flask_k8s_kubernetes_tests")

MANIFESTS = """
---
apiVersion: v1
kind: Namespace
metadata:
  name: flask-mongodb
---
apiVersion: v1
kind: Secret
metadata:
  name: mongodb-credentials
  namespace: flask-mongodb
stringData:
  app-password: do-not-copy-me
---
"""


def test_manifests_are_every_document_of_every_text():
    manifests = FILTERS.k8s_manifests(
        [MANIFESTS, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: ns}\n"]
    )
    assert [m["kind"] for m in manifests] == ["Namespace", "Secret", "Deployment"]
    assert FILTERS.k8s_manifests("---\n---\n") == []
    assert FILTERS.k8s_manifests("kind: Service\n") == [{"kind": "Service"}]


def test_labels_are_the_selector_the_component_and_the_project():
    selector = {"app.kubernetes.io/name": "mongodb", "app.kubernetes.io/instance": "db"}
    assert FILTERS.k8s_labels(selector, "database") == {
        **selector,
        "app.kubernetes.io/component": "database",
        "app.kubernetes.io/part-of": "flask-k8s",
        "app.kubernetes.io/managed-by": "ansible",
    }
    assert FILTERS.k8s_labels({}) == FILTERS.PROJECT_LABELS
    assert list(FILTERS.k8s_labels(selector, "web"))[:2] == list(selector)
    assert selector == {"app.kubernetes.io/name": "mongodb", "app.kubernetes.io/instance": "db"}


def test_selector_labels_name_the_component_and_its_instance():
    selector = FILTERS.k8s_selector_labels("mongodb", "db")
    assert selector == {"app.kubernetes.io/name": "mongodb", "app.kubernetes.io/instance": "db"}
    assert list(selector) == ["app.kubernetes.io/name", "app.kubernetes.io/instance"]


@pytest.mark.parametrize("instance", ["", 3, None, ["db"]])
def test_selector_labels_leave_a_bad_instance_to_the_role_s_check(instance):
    """The instance is a setting (mongodb_name, flaskapp_name...), which the role's check names
    in its own words ("mongodb_name must be a DNS label..."): the filter passes it as given."""
    assert (
        FILTERS.k8s_selector_labels("mongodb", instance)["app.kubernetes.io/instance"] == instance
    )


@pytest.mark.parametrize("name", ["", None, 3, {"a": 1}])
def test_selector_labels_refuse_an_empty_or_non_string_name(name):
    with pytest.raises(Exception, match="k8s_selector_labels takes a non-empty name, got "):
        FILTERS.k8s_selector_labels(name, "db")


@pytest.mark.parametrize("selector", [None, "app=web", ["app"], 3])
def test_labels_refuse_a_selector_that_is_not_a_map(selector):
    with pytest.raises(Exception, match="k8s_labels takes a map of selector labels"):
        FILTERS.k8s_labels(selector, "web")


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        (
            ["localhost", "127.0.0.1", "192.168.49.2"],
            ["DNS:localhost", "IP:127.0.0.1", "IP:192.168.49.2"],
        ),
        (["localhost", "127.0.0.1", ""], ["DNS:localhost", "IP:127.0.0.1"]),
        (["localhost", "127.0.0.1", "127.0.0.1"], ["DNS:localhost", "IP:127.0.0.1"]),
        (["node.example.com"], ["DNS:node.example.com"]),
        (["fd00::1", "::1"], ["IP:fd00::1", "IP:::1"]),
        (["1.2.3"], ["DNS:1.2.3"]),
        ([], []),
    ],
)
def test_subject_alt_names_say_ip_for_addresses_and_dns_for_names(hosts, expected):
    assert FILTERS.k8s_subject_alt_names(hosts) == expected


def test_subject_alt_names_add_the_service_names_once():
    names = FILTERS.k8s_subject_alt_names(["localhost", "flask-service"], "flask-service", "flask")
    assert names == [
        "DNS:localhost",
        "DNS:flask-service",
        "DNS:flask-service.flask",
        "DNS:flask-service.flask.svc",
        "DNS:flask-service.flask.svc.cluster.local",
    ]


@pytest.mark.parametrize("hosts", ["localhost", None, 3])
def test_subject_alt_names_refuse_hosts_that_are_not_a_list(hosts):
    with pytest.raises(Exception, match="takes a list of hosts"):
        FILTERS.k8s_subject_alt_names(hosts)


SETTLED = {
    "metadata": {"generation": 3},
    "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2},
}


def _with_status(**status):
    return {**SETTLED, "status": {**SETTLED["status"], **status}}


@pytest.mark.parametrize(
    ("deployment", "replicas", "settled"),
    [
        (SETTLED, 2, True),
        (SETTLED, "2", True),
        (_with_status(replicas=3, updatedReplicas=3, readyReplicas=3), 2, True),
        (SETTLED, 3, False),
        (_with_status(observedGeneration=2), 2, False),
        (_with_status(updatedReplicas=1), 2, False),
        (_with_status(readyReplicas=1), 2, False),
        (_with_status(replicas=3), 2, False),
        ({"metadata": {"generation": 1}, "status": {}}, 1, False),
        ({"metadata": {"generation": 1}}, 0, False),
        ({"metadata": {"generation": 1}, "status": {"observedGeneration": 1}}, 0, True),
        ({}, 0, False),
        (None, 0, False),
        ("Deployment", 0, False),
    ],
)
def test_a_deployment_is_settled_when_every_replica_is_updated_and_ready(
    deployment, replicas, settled
):
    assert TESTS.k8s_deployment_settled(deployment, replicas) is settled


def test_identities_name_each_object_and_never_carry_its_content():
    identities = [OBJECTS.identity(m) for m in FILTERS.k8s_manifests(MANIFESTS)]
    assert identities == [
        {"api_version": "v1", "kind": "Namespace", "name": "flask-mongodb", "namespace": None},
        {
            "api_version": "v1",
            "kind": "Secret",
            "name": "mongodb-credentials",
            "namespace": "flask-mongodb",
        },
    ]
    assert "do-not-copy-me" not in repr(identities)
    assert OBJECTS.resource_path(identities[0]) == "/api/v1/namespaces/flask-mongodb"
    assert OBJECTS.label(identities[1]) == "Secret/flask-mongodb/mongodb-credentials"


def test_a_dry_run_apply_is_forced_by_the_field_manager_and_changes_nothing():
    obj = {"api_version": "apps/v1", "kind": "Deployment", "namespace": "ns", "name": "web"}
    assert OBJECTS.apply_path(obj, "flask-k8s") == (
        "/apis/apps/v1/namespaces/ns/deployments/web?dryRun=All&fieldManager=flask-k8s&force=true"
    )


LIVE = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "labels": {"app": "web", "tier": "api"},
        "resourceVersion": "10",
        "generation": 3,
        "managedFields": [{"manager": "flask-k8s"}],
    },
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "resources": {"limits": {"cpu": "500m"}},
                    }
                ]
            }
        },
    },
    "status": {"readyReplicas": 2},
}


def test_an_apply_that_changes_nothing_finds_no_difference():
    applied = {
        **LIVE,
        "metadata": {**LIVE["metadata"], "managedFields": [], "resourceVersion": "11"},
        "status": {"readyReplicas": 0},
    }
    assert OBJECTS.differences(LIVE, applied) == []


def test_each_field_an_apply_would_change_is_named_by_its_path():
    container = LIVE["spec"]["template"]["spec"]["containers"][0]
    edited = {
        **container,
        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "changed"}],
        "resources": {"limits": {"cpu": "2"}},
    }
    applied = {
        **LIVE,
        "metadata": {**LIVE["metadata"], "labels": {"app": "web"}},
        "spec": {**LIVE["spec"], "replicas": 5, "template": {"spec": {"containers": [edited]}}},
    }
    assert OBJECTS.differences(LIVE, applied) == [
        "metadata.labels.tier",
        "spec.replicas",
        "spec.template.spec.containers[0].env[1].value",
        "spec.template.spec.containers[0].resources.limits.cpu",
    ]


def test_a_list_of_another_length_is_one_difference_and_values_never_appear():
    rules = {"spec": {"ingress": [{"from": [{"podSelector": {}}]}]}}
    opened = {"spec": {"ingress": [{"from": [{"podSelector": {}}]}, {}]}}
    assert OBJECTS.differences(rules, opened) == ["spec.ingress"]
    secret = {"data": {"key": "c2VjcmV0"}}
    assert OBJECTS.differences(secret, {"data": {"key": "b3RoZXI="}}) == ["data.key"]


@pytest.mark.parametrize(
    ("api_version", "kind", "namespace", "path"),
    [
        ("v1", "Namespace", "", "/api/v1/namespaces/x"),
        ("v1", "Secret", "ns", "/api/v1/namespaces/ns/secrets/x"),
        ("v1", "Service", "ns", "/api/v1/namespaces/ns/services/x"),
        ("v1", "ServiceAccount", "ns", "/api/v1/namespaces/ns/serviceaccounts/x"),
        ("v1", "ConfigMap", "ns", "/api/v1/namespaces/ns/configmaps/x"),
        ("v1", "PersistentVolumeClaim", "ns", "/api/v1/namespaces/ns/persistentvolumeclaims/x"),
        ("apps/v1", "StatefulSet", "ns", "/apis/apps/v1/namespaces/ns/statefulsets/x"),
        ("apps/v1", "Deployment", "ns", "/apis/apps/v1/namespaces/ns/deployments/x"),
        ("apps/v1", "DaemonSet", "ns", "/apis/apps/v1/namespaces/ns/daemonsets/x"),
        (
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            "ns",
            "/apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers/x",
        ),
        (
            "policy/v1",
            "PodDisruptionBudget",
            "ns",
            "/apis/policy/v1/namespaces/ns/poddisruptionbudgets/x",
        ),
        (
            "networking.k8s.io/v1",
            "NetworkPolicy",
            "ns",
            "/apis/networking.k8s.io/v1/namespaces/ns/networkpolicies/x",
        ),
        ("batch/v1", "CronJob", "ns", "/apis/batch/v1/namespaces/ns/cronjobs/x"),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/x",
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            "",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/x",
        ),
        (
            "networking.k8s.io/v1",
            "Ingress",
            "ns",
            "/apis/networking.k8s.io/v1/namespaces/ns/ingresses/x",
        ),
    ],
)
def test_each_kind_the_project_applies_is_read_at_its_api_path(api_version, kind, namespace, path):
    obj = {"api_version": api_version, "kind": kind, "name": "x", "namespace": namespace}
    assert OBJECTS.resource_path(obj) == path


def test_every_kind_the_fast_paths_look_for_has_a_tested_path():
    tested = {
        "Namespace", "Secret", "Service", "ServiceAccount", "ConfigMap", "PersistentVolumeClaim",
        "StatefulSet", "Deployment", "DaemonSet", "HorizontalPodAutoscaler", "PodDisruptionBudget",
        "NetworkPolicy", "CronJob", "ClusterRole", "ClusterRoleBinding", "Ingress", "Job",
    }  # fmt: skip
    kinds = set()
    # The roles whose fast path (tasks/current.yml) reads their objects with k8s_objects, through
    # the internal role's objects entry point.
    roles = [path.parts[-3] for path in ROLES_DIR.glob("*/tasks/current.yml")
             if re.search(r"^ +tasks_from: objects$", path.read_text(), re.M)]  # fmt: skip
    assert sorted(roles) == ["flaskapp", "mongodb", "network_policy"]
    for template in (t for role in roles for t in ROLES_DIR.glob(f"{role}/templates/*.yaml.j2")):
        for line in template.read_text().splitlines():
            if line.startswith("kind: ") and "{" not in line:
                kinds.add(line.removeprefix("kind: ").strip())
    assert kinds, "no kinds found in the templates"
    assert kinds <= tested, kinds - tested


def test_what_is_returned_of_an_object_never_carries_its_content():
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "managedFields": [{"manager": "flask-k8s"}], "uid": "u"},
        "data": {"app-password": "ZG8tbm90LWNvcHktbWU="},
        "stringData": {"app-password": "do-not-copy-me"},
    }
    assert OBJECTS.summary(secret) == {"metadata": {"name": "s", "uid": "u"}}
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"flask-k8s.io/fingerprint": "f"}},
        "spec": {"replicas": 2},
        "status": {"readyReplicas": 2},
    }
    assert OBJECTS.summary(deployment) == {
        "metadata": {"name": "web", "annotations": {"flask-k8s.io/fingerprint": "f"}},
        "spec": {"replicas": 2},
        "status": {"readyReplicas": 2},
    }


def test_objects_are_named_with_their_namespace_when_they_have_one():
    deployment = {"kind": "Deployment", "namespace": "ns", "name": "web"}
    assert OBJECTS.label(deployment) == "Deployment/ns/web"
    assert OBJECTS.label({"kind": "Namespace", "name": "kube-system"}) == "Namespace/kube-system"
