"""The plays' own plugins: the k8s_identities filter and the k8s_objects module's paths.

The module's reading against a real API server is exercised by tests/existing/run.sh (make
test-cluster): objects deleted by hand are restored by the next site.yml run, which changes
nothing afterwards.
"""

import importlib.util
import sys
from pathlib import Path

import pytest
from ansible_support import REPO


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


FILTERS = load(REPO / "playbooks" / "filter_plugins" / "kubernetes.py", "flask_k8s_filters")
OBJECTS = load(REPO / "playbooks" / "library" / "k8s_objects.py", "flask_k8s_k8s_objects")

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


def test_identities_name_each_object_and_never_carry_its_content():
    identities = FILTERS.k8s_identities(
        [MANIFESTS, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: ns}\n"]
    )
    assert identities == [
        {"api_version": "v1", "kind": "Namespace", "name": "flask-mongodb"},
        {
            "api_version": "v1",
            "kind": "Secret",
            "name": "mongodb-credentials",
            "namespace": "flask-mongodb",
        },
        {"api_version": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "ns"},
    ]
    assert "do-not-copy-me" not in repr(identities)


def test_identities_of_one_text_and_of_nothing():
    assert FILTERS.k8s_identities("---\n---\n") == []
    assert FILTERS.k8s_identities("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n") == [
        {"api_version": "v1", "kind": "Service", "name": "s"}
    ]


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
    # The roles whose fast path (tasks/current.yml) reads their objects with k8s_objects.
    roles = [path.parts[-3] for path in REPO.glob("roles/*/tasks/current.yml")
             if "k8s_objects" in path.read_text()]  # fmt: skip
    assert sorted(roles) == ["flaskapp", "mongodb", "network_policy"]
    for template in (t for role in roles for t in REPO.glob(f"roles/{role}/templates/*.yaml.j2")):
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
